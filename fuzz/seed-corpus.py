#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the golden exchanges in testdata/vectors/*.hex.

- request_parser: each request frame;
- response_parser: each response frame;
- op_bodies: each request and response body (bytes 36..36+body_len), prefixed by the low byte
  of the frame's opcode (the selector byte of the op_bodies target).

Files are named by the SHA-1 of their content, as libFuzzer names them. Usage:
    fuzz/seed-corpus.py [VECTORS_DIR]     (default: testdata/vectors of the repository)
"""
import hashlib
import pathlib
import sys

FUZZ = pathlib.Path(__file__).resolve().parent
VECTORS = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else FUZZ.parent / "testdata" / "vectors"


def write(target: str, data: bytes) -> None:
    out = FUZZ / "corpus" / target
    out.mkdir(parents=True, exist_ok=True)
    (out / hashlib.sha1(data).hexdigest()).write_bytes(data)


def body_seed(frame: bytes) -> bytes | None:
    if len(frame) < 36:
        return None
    body_len = int.from_bytes(frame[22:26], "little")
    return frame[28:29] + frame[36 : 36 + body_len]


count = 0
for path in sorted(VECTORS.glob("*.hex")):
    lines = path.read_text().splitlines()
    request = bytes.fromhex(lines[1].strip())
    response = bytes.fromhex(lines[2].strip()) if len(lines) > 2 else b""
    write("request_parser", request)
    if response:
        write("response_parser", response)
    for frame in (request, response):
        seed = body_seed(frame)
        if seed is not None:
            write("op_bodies", seed)
    count += 1
print(f"seeded from {count} vector files in {VECTORS}")
