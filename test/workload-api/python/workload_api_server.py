"""A SPIFFE Workload API server in Python grpcio (C-core HTTP/2, Google protobuf), for interop.

Usage: workload_api_server.py '{"socket": "/tmp/x/agent.sock"}'
Serves FetchX509SVID of the spec's proto (no package: /SpiffeWorkloadAPI/FetchX509SVID) on the
Unix socket. The message classes come from a descriptor written here (no protoc). Reads commands
from stdin, one JSON line each:
  {"push": {"svids": [{"spiffe_id", "x509_svid", "x509_svid_key", "bundle" (base64), "hint"}],
            "federated_bundles": {"spiffe://td": base64}}}   sets the state, sends it to open streams
  {"deny": "PERMISSION_DENIED"}                              ends open streams and new calls with it
  {"deny": null}                                             serves again
Prints {"listening": address} once started, then {"call": n, "header": value} per call.
"""
import base64
import json
import os
import queue
import sys
import threading
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto


def build_messages():
    fd = descriptor_pb2.FileDescriptorProto(name="workloadapi_interop.proto", syntax="proto3")
    req = fd.message_type.add(name="X509SVIDRequest")
    svid = fd.message_type.add(name="X509SVID")
    for number, (name, kind) in enumerate([("spiffe_id", F.TYPE_STRING), ("x509_svid", F.TYPE_BYTES), ("x509_svid_key", F.TYPE_BYTES), ("bundle", F.TYPE_BYTES), ("hint", F.TYPE_STRING)], start=1):
        svid.field.add(name=name, number=number, type=kind, label=F.LABEL_OPTIONAL)
    resp = fd.message_type.add(name="X509SVIDResponse")
    resp.field.add(name="svids", number=1, type=F.TYPE_MESSAGE, type_name=".X509SVID", label=F.LABEL_REPEATED)
    resp.field.add(name="crl", number=2, type=F.TYPE_BYTES, label=F.LABEL_REPEATED)
    entry = resp.nested_type.add(name="FederatedBundlesEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_BYTES, label=F.LABEL_OPTIONAL)
    resp.field.add(name="federated_bundles", number=3, type=F.TYPE_MESSAGE, type_name=".X509SVIDResponse.FederatedBundlesEntry", label=F.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    get = lambda n: message_factory.GetMessageClass(pool.FindMessageTypeByName(n)) if hasattr(message_factory, "GetMessageClass") else message_factory.MessageFactory(pool).GetPrototype(pool.FindMessageTypeByName(n))
    return get("X509SVIDRequest"), get("X509SVIDResponse")


Request, Response = build_messages()


def response_of(state):
    r = Response()
    for s in state.get("svids", []):
        e = r.svids.add()
        e.spiffe_id = s.get("spiffe_id", "")
        e.x509_svid = base64.b64decode(s.get("x509_svid", ""))
        e.x509_svid_key = base64.b64decode(s.get("x509_svid_key", ""))
        e.bundle = base64.b64decode(s.get("bundle", ""))
        e.hint = s.get("hint", "")
    for td, der in state.get("federated_bundles", {}).items():
        r.federated_bundles[td] = base64.b64decode(der)
    return r


class Api:
    def __init__(self):
        self.lock = threading.Lock()
        self.state = None
        self.denied = None
        self.streams = []
        self.calls = 0

    def fetch(self, request, context):
        with self.lock:
            self.calls += 1
            n = self.calls
        header = dict(context.invocation_metadata()).get("workload.spiffe.io")
        print(json.dumps({"call": n, "header": header}), flush=True)
        if header != "true":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "security header missing from request")
        q = queue.Queue()
        with self.lock:
            if self.denied:
                context.abort(getattr(grpc.StatusCode, self.denied), "no identity issued")
            self.streams.append(q)
            if self.state is not None:
                q.put(("msg", self.state))
        context.add_callback(lambda: q.put(("gone", None)))
        try:
            while True:
                kind, value = q.get()
                if kind == "msg":
                    yield response_of(value)
                elif kind == "deny":
                    context.abort(getattr(grpc.StatusCode, value), "no identity issued")
                else:
                    return
        finally:
            with self.lock:
                if q in self.streams:
                    self.streams.remove(q)

    def command(self, cmd):
        with self.lock:
            if "push" in cmd:
                self.state = cmd["push"]
                for q in self.streams:
                    q.put(("msg", self.state))
            if "deny" in cmd:
                self.denied = cmd["deny"]
                if self.denied:
                    for q in self.streams:
                        q.put(("deny", self.denied))


def main():
    args = json.loads(sys.argv[1])
    api = Api()
    handler = grpc.method_handlers_generic_handler(
        "SpiffeWorkloadAPI",
        {"FetchX509SVID": grpc.unary_stream_rpc_method_handler(api.fetch, request_deserializer=Request.FromString, response_serializer=lambda m: m.SerializeToString())},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port("unix:" + args["socket"])
    server.start()
    print(json.dumps({"listening": "unix://" + args["socket"]}), flush=True)
    for line in sys.stdin:  # the parent closing stdin (or dying) ends the server
        line = line.strip()
        if line:
            api.command(json.loads(line))
    server.stop(0).wait()


if __name__ == "__main__":
    main()
