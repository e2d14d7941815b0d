"""A grpcio server requiring client certificates, for the interop tests.

Usage: server.py '{"dir": "/tmp/x"}'  (tls.crt, tls.key, ca.crt in that directory)
Prints {"port": N} once listening, then {"call": ..., "peer": [...]} per call; stops on SIGTERM
or when its parent process goes away. Messages are JSON bytes (no protoc needed).
"""
import json
import os
import signal
import sys
import threading
from concurrent import futures

import grpc


def read(directory, name):
    with open(os.path.join(directory, name), "rb") as f:
        return f.read()


def peer_ids(context):
    auth = context.auth_context()
    return [v.decode() for v in auth.get("x509_subject_alternative_name", [])]


def unary(request, context):
    peer = peer_ids(context)
    print(json.dumps({"call": "Unary", "peer": peer}), flush=True)
    return {"peer": peer, "text": request.get("text", ""), "server": "python"}


def count(request, context):
    peer = peer_ids(context)
    print(json.dumps({"call": "Count", "peer": peer}), flush=True)
    for i in range(int(request.get("n", 1))):
        yield {"peer": peer, "i": i, "server": "python"}


def main():
    args = json.loads(sys.argv[1])
    encode = lambda obj: json.dumps(obj).encode()
    decode = lambda data: json.loads(data.decode())
    handler = grpc.method_handlers_generic_handler(
        "meshless.test.Echo",
        {
            "Unary": grpc.unary_unary_rpc_method_handler(unary, request_deserializer=decode, response_serializer=encode),
            "Count": grpc.unary_stream_rpc_method_handler(count, request_deserializer=decode, response_serializer=encode),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    creds = grpc.ssl_server_credentials(
        [(read(args["dir"], "tls.key"), read(args["dir"], "tls.crt"))],
        root_certificates=read(args["dir"], "ca.crt"),
        require_client_auth=True,
    )
    port = server.add_secure_port("localhost:0", creds)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    parent = os.getppid()

    def watch_parent():
        while not stop.wait(0.5):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=watch_parent, daemon=True).start()
    print(json.dumps({"port": port}), flush=True)
    stop.wait()
    server.stop(0).wait()


if __name__ == "__main__":
    main()
