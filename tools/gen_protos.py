"""Regenerate the committed Python code for protos/stemedb/v1 (run as `make protos`).

The output goes to src/stemedb/v1/: *_pb2.py, *_pb2.pyi (type stubs) and *_pb2_grpc.py.
tests/test_protos.py runs `generate()` into a temporary folder and fails when the committed
files differ, so a proto change without `make protos` cannot land.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGE_DIR = ("stemedb", "v1")
INIT_TEXT = '"""Generated protobuf and gRPC code for stemedb.v1 (see tools/gen_protos.py)."""\n'


def proto_files() -> list[Path]:
    return sorted((PROTO_ROOT.joinpath(*PACKAGE_DIR)).glob("*.proto"))


def generate(out_root: Path) -> list[Path]:
    """Generate into out_root/stemedb/v1 and return the generated files."""
    out_dir = out_root.joinpath(*PACKAGE_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *[str(p.relative_to(PROTO_ROOT)) for p in proto_files()],
    ]
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    (out_dir / "__init__.py").write_text(INIT_TEXT)
    return sorted(p for p in out_dir.iterdir() if p.is_file() and p.suffix in {".py", ".pyi"})


def main() -> int:
    target = ROOT / "src"
    for stale in target.joinpath(*PACKAGE_DIR).glob("*_pb2*"):
        stale.unlink()
    files = generate(target)
    for f in files:
        print(f"generated {f.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
