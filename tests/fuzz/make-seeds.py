#!/usr/bin/env python3
# Writes the binary seeds of the frame_decoder and stream fuzzers into tests/fuzz/corpus/; run it
# again when the frame format changes. The JSON seeds of agent_message (both directions: host-* are
# the host's messages), control_message and oci_spec are plain files.
import json
import pathlib
import struct

CONTROL, DATA, CREDIT, CLOSE = 1, 2, 3, 4
CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"


def frame(kind, stream, payload=b""):
    return struct.pack("<IB3xI", len(payload), kind, stream) + payload


def control(message):
    return frame(CONTROL, 0, json.dumps(message, separators=(",", ":")).encode())


def credit(stream, count):
    return frame(CREDIT, stream, struct.pack("<I", count))


def ops(*codes):  # stream fuzzer: a Control frame whose bytes act for the host's side
    return frame(CONTROL, 0, bytes(codes))


def op(action, amount=1):
    return (amount - 1) << 3 | action


TYPE, END_INPUT, READ, READER_GONE, PROCESS_GONE, STDOUT_BLOCK, STDERR_BLOCK, READ_ALL = range(8)

session = (control({"type": "hello", "version": "0.1.0+abc"}) + control({"type": "created"}) +
           control({"type": "started"}) + frame(DATA, 2, b"hello\n") + frame(DATA, 3, b"oops\n") +
           credit(1, 4096) + frame(CLOSE, 2) + frame(CLOSE, 3) +
           control({"type": "exit", "exit_code": 3}))
seeds = {
    # One byte that picks how the rest is cut into reads, then the channel's bytes.
    "frame_decoder": {
        "session-whole": b"\0" + session,
        "session-small-reads": b"\1" + session,
        "session-odd-reads": b"\x07" + session,
        "data-4k": b"\x40" + frame(DATA, 2, bytes(range(256)) * 16) + frame(CLOSE, 2),
        "oversized-data": b"\0" + struct.pack("<IB3xI", 64 * 1024 + 1, DATA, 2),
        "unknown-type": b"\0" + frame(5, 0, b"x"),
        "short-credit": b"\0" + frame(CREDIT, 1, b"abc"),
        "close-with-payload": b"\0" + frame(CLOSE, 2, b"x"),
        "truncated-payload": b"\2" + frame(CONTROL, 0, b'{"type":"hello"}')[:20],
    },
    # What the guest sends; Control frames script the host's side.
    "stream": {
        "stdout-read-closed": frame(DATA, 2, b"hello world\n") + ops(op(READ)) + frame(CLOSE, 2) +
                              ops(op(READ_ALL)),
        "stdin-typed-with-credit": ops(op(TYPE, 32), op(TYPE, 32)) + credit(1, 8192) +
                                   ops(op(TYPE, 4), op(END_INPUT)) + credit(1, 16384),
        "stderr-nobody-reads": frame(DATA, 3, b"warning\n" * 64) + frame(CLOSE, 3),
        "reader-gone": frame(DATA, 2, b"x" * 2000) + ops(op(READ, 1), op(READER_GONE)) +
                       frame(DATA, 2, b"y" * 100) + frame(CLOSE, 2),
        "process-gone": ops(op(TYPE, 8)) + ops(op(PROCESS_GONE)) + credit(1, 100),
        "credit-beyond-window": credit(1, 0xFFFFFFFF),
        "data-after-close": frame(CLOSE, 2) + frame(DATA, 2, b"late"),
        "stdout-full-pipe": ops(op(STDOUT_BLOCK, 32), op(STDOUT_BLOCK, 32), op(READ, 8)) +
                            ops(op(READ_ALL)) + frame(CLOSE, 2),
        "stdout-whole-window": ops(*[op(STDOUT_BLOCK, 32)] * 4) + ops(op(READ_ALL)) +
                               ops(op(STDOUT_BLOCK, 1)),
        "stdout-beyond-window": ops(*[op(STDOUT_BLOCK, 32)] * 5),
        "stderr-blocks": ops(op(STDERR_BLOCK, 32), op(STDERR_BLOCK, 7)) + frame(CLOSE, 3),
    },
}

for target, files in seeds.items():
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
