"""`python -m llmfleet.api.crdgen DIR...` writes the CRDs into each DIR; `--check` compares."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from llmfleet.api.crd import rendered_files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crdgen", description=__doc__)
    parser.add_argument("directories", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="fail if a file differs")
    args = parser.parse_args(argv)
    stale = []
    for directory in args.directories:
        for name, text in rendered_files().items():
            path = directory / name
            current = path.read_text() if path.exists() else ""
            if current == text:
                continue
            if args.check:
                stale.append(path)
                diff = difflib.unified_diff(
                    current.splitlines(),
                    text.splitlines(),
                    str(path),
                    "generated",
                    lineterm="",
                    n=1,
                )
                sys.stdout.write("\n".join(list(diff)[:40]) + "\n")
            else:
                directory.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                sys.stdout.write(f"wrote {path}\n")
        if not args.check:
            known = set(rendered_files())
            for leftover in directory.glob("*.yaml"):
                if leftover.name not in known:
                    leftover.unlink()
                    sys.stdout.write(f"removed {leftover}\n")
    if stale:
        sys.stdout.write(
            f"{len(stale)} CRD file(s) differ from the models: run `make crds` and commit\n"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
