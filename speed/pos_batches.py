"""Training speed of the POS tagger on the real treebank, per batch layout and thread count.

    NLTK_DATA=path/to/nltk_data .venv/bin/python speed/pos_batches.py [--batches 30]

Compares trimming each batch to its longest sentence (what the sequence_labelling task does)
with feeding the split's full padded width (271 tokens on the treebank), for a few batch
sizes and torch thread counts. Prints training sentences per second (forward, backward and
Adam step, the same calls train.py makes) and the epoch time that rate implies.
"""
from __future__ import annotations

import argparse
import time

import torch

from regsuite.api import Batch
from regsuite.plugins.datasets.nltk_treebank import NLTKTreebank
from regsuite.plugins.models.rnn_tagger import RNNTagger
from regsuite.plugins.tasks.sequence_labelling import SequenceLabelling


def rate(data, task, model_params, batch_size: int, batches: int, trim: bool) -> float:
    torch.manual_seed(0)
    model = RNNTagger(RNNTagger.Params(**model_params)).build(data.info)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))
    started, seen = time.perf_counter(), 0
    for start in range(0, batches * batch_size, batch_size):
        index = order[start : start + batch_size]
        inputs, targets = data.train.inputs[index], data.train.targets[index]
        batch = task.prepare_batch(inputs, targets) if trim else Batch(inputs, targets)
        loss = task.loss(model(batch.inputs), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(index)
    return seen / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--hidden", type=int, default=128)
    args = parser.parse_args()
    data = NLTKTreebank().load()
    task = SequenceLabelling()
    task.setup(data)
    model_params = {"cell": "rnn", "bidirectional": True, "hidden_size": args.hidden}
    print(f"train split: {len(data.train)} sentences, padded width {data.train.inputs.shape[1]}")
    print("threads  batch  trim   sentences/s  epoch s")
    for threads in args.threads:
        torch.set_num_threads(threads)
        for batch_size in args.batch_sizes:
            for trim in (True, False):
                r = rate(data, task, model_params, batch_size, args.batches, trim)
                print(f"{threads:7d}  {batch_size:5d}  {str(trim):5}  {r:11.0f}  {len(data.train) / r:7.1f}", flush=True)


if __name__ == "__main__":
    main()
