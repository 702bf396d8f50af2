"""neuro.nn under torch.nn.parallel.DistributedDataParallel (gloo, CPU, 2 processes launched by torchrun).

DDP averages the gradients of the ranks. With a loss that is a mean over the batch and equal shards, the
average of the two shards' gradients is the gradient of the whole batch:
``grad (L0 + L1) / 2 = grad L(batch)``. So after one step every rank must hold exactly the mean of the two shards'
gradients, and after an SGD step the parameters that mean gives, neuron parameters (learnable beta, alpha,
threshold) included; and that mean must equal the gradient of one process trained on the concatenated batch, up to
the order of the batch sum. The references are computed here, in this process, without torch.distributed, with
torch on one thread as in the workers (torch's conv backward sums in a thread-dependent order).

This file is also the worker: ``python -m torch.distributed.run --standalone --nproc-per-node 2
tests/test_ddp.py OUT_DIR`` writes ``OUT_DIR/<model>_rank<r>.pt`` (gradients and parameters after the step).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

import neuro
from neuro.files import atomic_output
from neuro.nn import losses

WORLD = 2
T = 8
BATCH = 8  # global batch; each rank gets BATCH // WORLD samples
LR = 0.5
MODELS = ("mlp", "conv")


def build(kind: str) -> nn.Module:
    """The same initial network in every process (seeded)."""
    torch.manual_seed(1234)
    if kind == "mlp":
        return nn.Sequential(
            neuro.nn.TimeDistributed(nn.Linear(20, 32)),
            neuro.nn.LIF(beta=0.9, learn_beta=True, learn_threshold=True),
            neuro.nn.TimeDistributed(nn.Linear(32, 5)),
            neuro.nn.LI(beta=0.8, learn_beta=True),
        )
    if kind == "conv":
        return nn.Sequential(
            neuro.nn.TimeDistributed(nn.Conv2d(2, 4, 3, padding=1)),
            # one beta per channel, broadcast over the 8 x 8 map
            neuro.nn.LIF(beta=torch.linspace(0.8, 0.95, 4).reshape(4, 1, 1), learn_beta=True),
            neuro.nn.TimeDistributed(nn.AvgPool2d(2)),
            neuro.nn.Flatten(),
            neuro.nn.TimeDistributed(nn.Linear(4 * 4 * 4, 5)),
            neuro.nn.CubaLIF(alpha=0.7, beta=0.9, threshold=0.5, learn_alpha=True, learn_beta=True,
                             learn_threshold=True),
        )
    raise ValueError(f"unknown model {kind!r}")


def batch(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The global batch ``x [T, BATCH, ...]``, labels ``[BATCH]`` (seeded, the same in every process)."""
    g = torch.Generator().manual_seed(99)
    shape = (T, BATCH, 20) if kind == "mlp" else (T, BATCH, 2, 8, 8)
    x = (torch.rand(shape, generator=g) * 2.0).float()
    y = torch.randint(0, 5, (BATCH,), generator=g)
    return x, y


def loss_of(kind: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # both are means over the batch, the condition for DDP's average to equal the whole-batch gradient
    return losses.ce_membrane_loss(out, y) if kind == "mlp" else losses.ce_count_loss(out, y)


def train_step(kind: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, module: nn.Module | None = None):
    """One forward/backward/SGD step; returns (gradients, parameters after the step, output)."""
    module = model if module is None else module  # the DDP wrapper when distributed
    out = module(x)
    loss_of(kind, out, y).backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():  # plain SGD, p <- p - lr grad (torch.optim would import torch._dynamo: seconds)
        for p in model.parameters():
            p -= LR * p.grad
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    return grads, params, out.detach()


def _worker(out_dir: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)
    store = os.environ.get("NEURO_DDP_STORE")
    if store:  # launched by the test: a file rendezvous, no TCP port to find or wait for
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=int(os.environ["RANK"]),
                                world_size=int(os.environ["WORLD_SIZE"]))
    else:  # launched by torchrun (env://), as the README shows
        dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    per = BATCH // world
    for kind in MODELS:
        model = build(kind)
        ddp = DDP(model)
        x, y = batch(kind)
        shard = slice(rank * per, (rank + 1) * per)
        grads, params, _ = train_step(kind, model, x[:, shard].contiguous(), y[shard], module=ddp)
        with atomic_output(Path(out_dir) / f"{kind}_rank{rank}.pt") as tmp:
            torch.save({"grads": grads, "params": params, "world": world}, tmp)
    dist.barrier()  # both ranks have written their results
    # Leave without tearing down torch.distributed. In torch 2.13, freeing the last DDP Reducer after
    # destroy_process_group() runs ~ProcessGroupGloo on the main thread with the GIL held; it joins gloo's worker
    # thread, which is waiting for the GIL to free an AsyncWork's thread-local state: a deadlock in about one run in
    # four (py-spy: main thread in std::thread::join under Reducer dealloc, worker in gil_scoped_acquire).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _run_torchrun(out_dir: Path) -> float:
    """Run ``WORLD`` worker processes of this file (what ``torchrun --nproc-per-node=WORLD`` starts), joined by a
    file store, with gloo on the loopback interface (gloo otherwise resolves the host name to pick one)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", WORLD_SIZE=str(WORLD),
               NEURO_DDP_STORE=str(out_dir / "store"), GLOO_SOCKET_IFNAME="lo")
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, str(Path(__file__).resolve()), str(out_dir)],
                              env=dict(env, RANK=str(r), LOCAL_RANK=str(r)), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in range(WORLD)]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=300)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for r, (p, out) in enumerate(zip(procs, outs, strict=True)):
        if p.returncode != 0:
            raise AssertionError(f"DDP rank {r} failed ({p.returncode}):\n{out[-3000:]}")
    return time.perf_counter() - t0


def _one_thread(fn, *args):
    """Run ``fn`` with torch on one thread, as the workers run: torch's conv backward sums in a thread-dependent
    order, and the comparison with the workers below is bit-exact."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(threads)


def test_ddp_step_equals_single_process_on_concatenated_batch(tmp_path):
    _run_torchrun(tmp_path)
    per = BATCH // WORLD
    for kind in MODELS:
        x, y = batch(kind)
        ref_grads, ref_params, out = _one_thread(train_step, kind, build(kind), x, y)
        spikes = out if kind == "conv" else None
        if spikes is not None:  # the output layer must fire, or its surrogate path would be untested
            assert 0 < spikes.sum() < spikes.numel()
        neuron_params = [n for n in ref_grads if n.split(".")[-1] in ("beta", "alpha", "threshold")]
        assert len(neuron_params) == (3 if kind == "mlp" else 4)
        shard_grads = [_one_thread(train_step, kind, build(kind), x[:, r * per:(r + 1) * per].contiguous(),
                                   y[r * per:(r + 1) * per])[0] for r in range(WORLD)]
        # what DDP must produce: the mean of the shards' gradients (gloo sums, DDP divides by the world size)
        mean_grads = {n: sum(g[n] for g in shard_grads) / WORLD for n in ref_grads}
        for n in ref_grads:
            # a rank's own shard gives different gradients: the equality below needs the all-reduce
            assert not torch.allclose(shard_grads[0][n], ref_grads[n], rtol=1e-3, atol=1e-6), (kind, n)
            # the mean over shards is the whole batch's gradient; they differ only in the order of the batch sum
            # (4096 terms for the first conv's weight), so the bound is relative to the gradient's size
            scale = ref_grads[n].abs().max().item()
            torch.testing.assert_close(mean_grads[n], ref_grads[n], rtol=0, atol=1e-5 * scale,
                                       msg=f"{kind} shard mean vs whole batch {n}")
        for rank in range(WORLD):
            got = torch.load(tmp_path / f"{kind}_rank{rank}.pt", weights_only=True)
            assert got["world"] == WORLD
            assert got["grads"].keys() == ref_grads.keys()
            for n in ref_grads:
                assert torch.equal(got["grads"][n], mean_grads[n]), f"{kind} rank {rank} grad {n}"
                stepped = build(kind).state_dict()[n] - LR * mean_grads[n]
                assert torch.equal(got["params"][n], stepped), f"{kind} rank {rank} param {n}"


if __name__ == "__main__":
    _worker(sys.argv[1])
