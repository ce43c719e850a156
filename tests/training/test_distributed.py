"""DistributedDataParallel training: 2 CPU processes (Gloo) reproduce a single-process run.

The reference is a single-process run with the same *global* batch (per-rank batch x 2) and the
same sample order; the loss trajectory and the final weights must agree within 1e-5. One test
goes through ``torch.multiprocessing.spawn`` + ``fit`` (missing modalities, modality dropout,
gradient clipping, warm-up cosine schedule), one through the real CLI under torchrun.
Models use dropout 0: nn.Dropout masks are per-rank random streams by design (so are the random
patch masks of decoupled image-gate training, which these tests therefore do not use).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import fusioncore as fc
from fusioncore.cli import main
from fusioncore.training import fit
from fusioncore.training.distributed import DistContext, epoch_batches, shard_order
from fusioncore.training.resume import load_training_state

from conftest import make_tabular_dataset
from doc_layouts import write_mogonet

REPO = Path(__file__).resolve().parents[2]
TOL = 1e-5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- sharding
def test_shards_partition_each_global_batch():
    order = np.random.default_rng(0).permutation(23)
    world, b = 2, 4
    per_rank = [epoch_batches(order, b, r, world) for r in range(world)]
    assert [len(p) for p in per_rank] == [3, 3]  # 11 samples each: 4 + 4 + 3
    single = epoch_batches(order[: 22], b * world)  # single process, same global batch, tail dropped
    for k, global_batch in enumerate(single):
        union = np.concatenate([per_rank[r][k] for r in range(world)])
        assert sorted(union.tolist()) == sorted(global_batch.tolist())
        assert len(per_rank[0][k]) == len(per_rank[1][k])  # equal local sizes: mean of means = global mean
    assert np.array_equal(shard_order(order, 0, 1), order)
    with pytest.raises(ValueError, match="rank 2"):
        shard_order(order, 2, 2)
    with pytest.raises(ValueError, match="cannot be shared"):
        shard_order(order[:1], 0, 2)


def test_single_process_context_is_main():
    ctx = DistContext()
    assert ctx.is_main and not ctx.enabled and ctx.world_size == 1


def test_distributed_true_without_a_group_is_an_error():
    data = make_tabular_dataset(n=16)
    model = fc.create_model("early", data.schema, hidden_dim=4, head_dim=0, dropout=0.0)
    with pytest.raises(ValueError, match="torchrun"):
        fit(model, data, fc.TrainConfig(epochs=1, batch_size=4), progress=False, distributed=True)


# --------------------------------------------------------------------------- spawn + fit
CFG = dict(epochs=3, lr=1e-2, optimizer="adamw", scheduler="cosine", warmup_steps=2, grad_clip=0.5,
           modality_dropout=0.3, seed=5)
PER_RANK_BATCH = 6


def _data():
    return make_tabular_dataset(n=48, dims=(5, 4, 3), missing=0.25, seed=2)


def _model(schema):
    torch.manual_seed(11)
    return fc.create_model("early", schema, hidden_dim=8, head_dim=8, dropout=0.0)


def _worker(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        data = _data()
        model = _model(data.schema)
        res = fit(model, data, fc.TrainConfig(batch_size=PER_RANK_BATCH, **CFG), progress=False, distributed=True,
                  state_dir=f"{out}/state", state_every=5)
        if rank == 0:
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{out}/weights.safetensors")
            Path(out, "history.json").write_text(json.dumps({"history": res.history, "world_size": res.world_size}))
        # Resume under DDP, with nn.Dropout on (per-rank RNG streams must be restored per rank):
        # uninterrupted vs interrupted on every rank after 7 steps (state every 3) and resumed.
        cfg = fc.TrainConfig(batch_size=PER_RANK_BATCH, **CFG)
        runs = {}
        for name in ("uninterrupted", "interrupted", "resumed"):
            torch.manual_seed(11)
            m = fc.create_model("early", data.schema, hidden_dim=8, head_dim=8, dropout=0.3)
            kw = dict(progress=False, distributed=True, state_dir=f"{out}/resume_state", state_every=3)
            if name == "uninterrupted":
                kw = dict(progress=False, distributed=True)
            if name == "interrupted":
                def stop(step, record):
                    if step == 7:
                        raise InterruptedError
                try:
                    fit(m, data, cfg, on_step=stop, **kw)
                except InterruptedError:
                    continue
                raise AssertionError("the interrupted run was not interrupted")
            r = fit(m, data, cfg, resume=name == "resumed", **kw)
            runs[name] = (r, {k: v.clone() for k, v in m.state_dict().items()})
        (a, wa), (b, wb) = runs["uninterrupted"], runs["resumed"]
        same = a.history == b.history and all(torch.equal(wa[k], wb[k]) for k in wa)
        Path(out, f"resume_rank{rank}.json").write_text(json.dumps({"same": same, "resumed_from": b.resumed_from_step}))
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_match_single_process(tmp_path):
    world = 2
    torch.multiprocessing.spawn(_worker, args=(world, _free_port(), str(tmp_path)), nprocs=world, join=True)
    ddp = json.loads((tmp_path / "history.json").read_text())
    ddp_weights = load_file(str(tmp_path / "weights.safetensors"))
    assert ddp["world_size"] == world

    data = _data()
    model = _model(data.schema)
    single = fit(model, data, fc.TrainConfig(batch_size=PER_RANK_BATCH * world, **CFG), progress=False)
    assert single.world_size == 1
    assert len(ddp["history"]) == len(single.history) == CFG["epochs"]
    for a, b in zip(ddp["history"], single.history):
        assert a.keys() == b.keys()
        for key in a:
            assert abs(a[key] - b[key]) <= TOL, (key, a[key], b[key])
    state = model.state_dict()
    assert ddp_weights.keys() == state.keys()
    worst = max(float((ddp_weights[k] - state[k]).abs().max()) for k in state)
    assert worst <= TOL, worst
    # and training did move the weights (the comparison is not vacuous)
    assert max(float((_model(data.schema).state_dict()[k] - state[k]).abs().max()) for k in state) > 1e-2

    for rank in range(world):  # killed after 7 steps, resumed from step 6: same weights on every rank
        assert json.loads((tmp_path / f"resume_rank{rank}.json").read_text()) == {"same": True, "resumed_from": 6}

    # rank 0 wrote one training state holding every rank's torch RNG state; resuming it with
    # another world size is refused (the shards, hence the sample order, would differ)
    saved = load_training_state(tmp_path / "state")
    assert saved.meta["world_size"] == world and len(saved.rng["torch_cpu"]) == world
    assert saved.progress["finished"] and all(torch.equal(saved.model[k], ddp_weights[k]) for k in state)
    with pytest.raises(ValueError, match="world_size: state has 2, this run has 1"):
        fit(_model(data.schema), data, fc.TrainConfig(batch_size=PER_RANK_BATCH, **CFG), progress=False,
            state_dir=tmp_path / "state", resume=True)


# --------------------------------------------------------------------------- the real CLI under torchrun
def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    return env


def test_cli_under_torchrun_matches_single_process(tmp_path, capsys):
    data = write_mogonet(tmp_path / "ds", n_tr=40, n_te=10, dims=(6, 5))
    common = ["train", "--method", "mmdynamics", "--data", f"mogonet:{data}", "--epochs", "3", "--lr", "0.01",
              "--device", "cpu", "--quiet", "--param", "hidden_dim=8", "--param", "dropout=0",
              "--train-param", "scheduler=cosine", "--train-param", "grad_clip=1.0"]
    port = _free_port()
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(port),
         "-m", "fusioncore", *common, "--batch-size", "5", "--out", str(tmp_path / "ddp")],
        capture_output=True, text=True, env=_env(), timeout=240, cwd=REPO,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    capsys.readouterr()
    assert main([*common, "--batch-size", "10", "--out", str(tmp_path / "single")]) == 0  # in-process: one launch fewer
    # only rank 0 printed a record (two records would not parse as one JSON document)
    ddp_record, single_record = json.loads(ddp.stdout), json.loads(capsys.readouterr().out)
    assert ddp_record["world_size"] == 2 and single_record["world_size"] == 1
    assert abs(ddp_record["final_loss"] - single_record["final_loss"]) <= TOL
    a = load_file(str(tmp_path / "ddp" / "model.safetensors"))
    b = load_file(str(tmp_path / "single" / "model.safetensors"))
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst <= TOL, worst
    # the checkpoint written under torchrun loads like any other
    model = fc.load(tmp_path / "ddp")
    assert model.train_config.batch_size == 5
