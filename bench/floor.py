"""The floor: a trivial keep-alive HTTP/1.1 server returning canned responses.

Usage: floor.py PORT CANNED.json, where CANNED maps request keys (see
harness.request_key) to {"status", "headers", "body" (base64)}. It does the least
work an HTTP server can: read the head, read Content-Length bytes, write the answer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from urllib.parse import parse_qs


def build(canned: dict) -> dict[str, bytes]:
    out = {}
    for key, resp in canned.items():
        body = base64.b64decode(resp["body"])
        head = [f"HTTP/1.1 {resp['status']} OK"]
        head += [f"{k}: {v}" for k, v in resp["headers"].items()]
        head.append(f"content-length: {len(body)}")
        out[key] = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    return out


async def serve(port: int, answers: dict[str, bytes]) -> None:
    missing = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
    ready = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                if headers.get("expect", "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                path = path.split("?", 1)[0]
                if path == "/__ready":
                    writer.write(ready)
                    continue
                action = None
                if body.startswith(b"Action=") or b"&Action=" in body:
                    action = parse_qs(body.decode()).get("Action", [None])[0]
                key = f"{method} {path} {headers.get('x-amz-target', '')} {action or ''}"
                writer.write(answers.get(key, missing))
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    canned = json.loads(open(sys.argv[2]).read())
    try:
        import uvloop

        uvloop.run(serve(int(sys.argv[1]), build(canned)))
    except ImportError:
        asyncio.run(serve(int(sys.argv[1]), build(canned)))
