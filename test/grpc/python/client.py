"""A grpcio client for the interop tests: one call to the Node server, result as one JSON line.

Usage: client.py '{"target": "localhost:1234", "dir": "/tmp/x", "method": "/meshless.test.Echo/Unary",
                   "kind": "unary" | "stream", "request": {...}}'
The directory holds tls.crt, tls.key and ca.crt. Messages are JSON bytes (no protoc needed).
"""
import json
import os
import sys

import grpc


def read(directory, name):
    with open(os.path.join(directory, name), "rb") as f:
        return f.read()


def main():
    args = json.loads(sys.argv[1])
    creds = grpc.ssl_channel_credentials(
        root_certificates=read(args["dir"], "ca.crt"),
        private_key=read(args["dir"], "tls.key"),
        certificate_chain=read(args["dir"], "tls.crt"),
    )
    encode = lambda obj: json.dumps(obj).encode()
    decode = lambda data: json.loads(data.decode())
    with grpc.secure_channel(args["target"], creds) as channel:
        try:
            if args["kind"] == "unary":
                call = channel.unary_unary(args["method"], request_serializer=encode, response_deserializer=decode)
                replies = [call(args["request"], timeout=10)]
            else:
                call = channel.unary_stream(args["method"], request_serializer=encode, response_deserializer=decode)
                replies = list(call(args["request"], timeout=10))
            print(json.dumps({"ok": True, "replies": replies}), flush=True)
        except grpc.RpcError as err:
            print(json.dumps({"ok": False, "code": err.code().name, "details": err.details()}), flush=True)


if __name__ == "__main__":
    main()
