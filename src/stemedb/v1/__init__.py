"""Generated protobuf and gRPC code for stemedb.v1 (see tools/gen_protos.py)."""
