"""``fusioncore list`` (the registered methods) and ``fusioncore import`` (official checkpoints)."""

from __future__ import annotations

import argparse
from pathlib import Path

#: How a ``torch.save`` file starts: a zip archive (PyTorch >= 1.6) or a pickle (older PyTorch).
TORCH_SAVE_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")

from ..output_folder import guarded_output


def cmd_list(args: argparse.Namespace) -> dict:
    from ..registry import get_method, list_models

    return {name: {"description": get_method(name).description, "supports": list(get_method(name).supports)}
            for name in list_models()}


def cmd_import(args: argparse.Namespace) -> dict:
    from ..data.loaders import load_data
    from ..importers import import_mmdynamics

    if args.source != "mmdynamics":
        raise ValueError(f"import supports 'mmdynamics' checkpoints, not {args.source!r}")
    check_state_dict_file(Path(args.state_dict))
    out = import_mmdynamics(args.state_dict, load_data(args.data), args.out)
    return {"checkpoint": str(out), "source": args.state_dict}


def check_state_dict_file(path: Path) -> None:
    """Refuse a ``--state-dict`` that is not a ``torch.save`` file before PyTorch reads it.

    PyTorch's own errors for a text file or a safetensors file (``KeyError: 101``, "invalid load
    key") name neither the file nor what was expected.
    """
    from ..data.readers import check_readable

    try:
        check_readable(path)
    except ValueError as err:
        raise ValueError(f"--state-dict {err}") from None
    with open(path, "rb") as file:
        head = file.read(16)
    if head.startswith(TORCH_SAVE_MAGIC):
        return
    if len(head) >= 9 and head[8:9] == b"{":
        raise ValueError(f"--state-dict {path}: a safetensors file, not the official code's torch.save checkpoint "
                         "(a fusioncore checkpoint folder is loaded as it is, without import)")
    shown = head[:8].decode("latin-1").encode("unicode_escape").decode()
    raise ValueError(f"--state-dict {path}: not a PyTorch checkpoint (a torch.save file starts with a zip or pickle "
                     f"header; this one starts with {shown!r}); pass the .pt/.pth file the official MM-dynamics code "
                     "wrote with torch.save(model.state_dict())")


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="list the registered methods")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("import", help="convert an official checkpoint into a fusioncore checkpoint")
    p.add_argument("source", choices=["mmdynamics"])
    p.add_argument("--state-dict", required=True)
    p.add_argument("--data", required=True, help="the dataset the checkpoint was trained on (schema + train statistics)")
    p.add_argument("--out", required=True, help="checkpoint folder to write (new, empty, or a checkpoint with --force)")
    p.add_argument("--force", action="store_true", help="replace the checkpoint already in --out")
    p.set_defaults(func=guarded_output(cmd_import))
