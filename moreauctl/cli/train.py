"""``moreauctl train``: train a classifier with one method, print the training objective per
epoch and the test accuracy, write JSON and figures.

::

    moreauctl train --dataset digits --hidden 64,32 --method moreau-sgd --step 0.5 \\
        --gamma 1 --epochs 10 --json - --out results/
    moreauctl train --dataset fashion-mnist --arch convnet --method sgd --step 0.1
    moreauctl train --dataset mnist:/data/mnist --hidden 500,300,100 --method svgd

``--dataset``: ``digits`` (scikit-learn's, split 75/25 with ``--seed``), ``fashion-mnist``
(Debian's ``dataset-fashion-mnist`` files, or ``fashion-mnist:PATH``), ``mnist:PATH``,
``cifar10:PATH`` (the binary version). With ``--json -`` the result goes to stdout (the
field names of :class:`moreauctl.SolveResult` without the weights, plus ``test_accuracy``,
``train_accuracy``, ``confusion_matrix`` and the settings used) and the log to stderr.
``--out DIR`` writes ``result.json``, ``weights.npz``, ``curves.png`` (objective per epoch)
and ``confusion.png`` (test set).
"""
from __future__ import annotations

import argparse
import io
import os
import sys

import numpy as np

from .._io import atomic_write, write_json_atomic
from ..nn.activations import ACTIVATIONS
from ..nn.losses import LOSSES
from ..nn.tasks import ARCHS, make_task
from ..solve import METHODS, solve
from .args import (add_oracle_args, add_quiet, check_output_dir, check_output_file, cost_table,
                   int_list, nonnegative_float, nonnegative_int, oracle_options, positive_float,
                   positive_int, report_write_error, write_json_or_stdout)

__all__ = ["add_parser", "run", "epoch_table"]


def epoch_table(costs) -> str:
    """``epoch  training objective`` rows (about twenty; the last always included)."""
    return cost_table(costs, rows=20, head=("epoch", "training objective"))


def _save_weights(path, w) -> None:
    arrays = {f"{name}{t}": a for t, p in enumerate(w) for name, a in zip(("W", "b"), p)}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(path, buf.getvalue())


def run(args: argparse.Namespace) -> int:
    """Check the output paths, train, print, write; returns the exit code (1 when a file
    could not be written after all)."""
    from sklearn.metrics import confusion_matrix
    if args.json and args.json != "-":
        check_output_file(args.json, "--json")
    if args.out:
        check_output_dir(args.out, "--out")
    hidden = args.hidden if args.hidden is not None else ([64] if args.arch == "mlp" else [])
    task = make_task(dataset=args.dataset, arch=args.arch, hidden=hidden,
                     activation=args.activation, loss=args.loss,
                     batch_size=args.batch_size or None, weight_decay=args.weight_decay,
                     dtype=args.dtype, seed=args.seed, n_train=args.n_train, n_test=args.n_test)
    prob = task.problem
    out = sys.stderr if args.json == "-" else sys.stdout
    if not args.quiet:
        print(repr(prob), file=out)
        print(f"method={args.method} step={args.step} gamma={args.gamma} epochs={args.epochs} "
              f"seed={args.seed}", file=out)
    res = solve(prob, method=args.method, step=args.step, gamma=args.gamma, epochs=args.epochs,
                seed=args.seed, oracle_options=oracle_options(args) or None,
                verbose=not args.quiet)
    d = task.data
    pred = task.net.predict(res.w, d.X_test)
    cm = confusion_matrix(d.y_test, pred, labels=np.arange(d.n_classes))
    test_acc = float(np.trace(cm) / max(cm.sum(), 1))
    train_acc = task.accuracy(res.w, "train")
    if not args.quiet or args.json != "-":
        print(epoch_table(res.costs), file=out)
        print(f"status {res.status}: {res.message}; success={res.success}", file=out)
        print(f"training objective {res.fun:.6g} (best {res.best_cost:.6g}); accuracy: train "
              f"{train_acc:.4f}, test {test_acc:.4f} ({d.X_test.shape[0]} samples)", file=out)
    rec = res.to_dict()
    for k in ("w", "states"):
        rec.pop(k, None)
    rec["settings"] = {**rec["settings"], **task.settings}
    rec.update(test_accuracy=test_acc, train_accuracy=train_acc,
               confusion_matrix=cm.tolist())
    ok = True
    if args.json:
        ok = write_json_or_stdout(rec, args.json)
    if args.out:
        from ..plots import plot_confusion, plot_training
        try:
            os.makedirs(args.out, exist_ok=True)
            write_json_atomic(os.path.join(args.out, "result.json"), rec, indent=1)
            _save_weights(os.path.join(args.out, "weights.npz"), res.w)
            plot_training(res, os.path.join(args.out, "curves.png"),
                          title=f"{prob.name}: {args.method}, step {args.step:g}; test "
                                f"accuracy {test_acc:.4f}")
            plot_confusion(cm, os.path.join(args.out, "confusion.png"),
                           title=f"{d.name} test set, {args.method}: accuracy {test_acc:.4f}")
            print(f"wrote {args.out}/result.json, weights.npz, curves.png, confusion.png",
                  file=out)
        except OSError as e:
            report_write_error("--out", args.out, e)
            ok = False
    return 0 if ok else 1


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``train`` sub-command to an argparse ``subparsers`` object."""
    p = subparsers.add_parser("train", help="train a classifier (networks as stages)",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits",
                   help="digits | fashion-mnist[:PATH] | mnist:PATH | cifar10:PATH")
    p.add_argument("--arch", default="mlp", choices=list(ARCHS))
    p.add_argument("--hidden", type=int_list, default=None,
                   help="hidden layer sizes of the MLP, e.g. 64,32 (default 64)")
    p.add_argument("--activation", default="relu", choices=sorted(ACTIVATIONS))
    p.add_argument("--loss", default="cross_entropy", choices=sorted(LOSSES))
    p.add_argument("--method", default="sgd", choices=list(METHODS))
    p.add_argument("--step", type=positive_float, default=0.1,
                   help="learning rate (alpha for moreau-gd/moreau-sgd)")
    p.add_argument("--gamma", type=positive_float, default=None,
                   help="Moreau gamma (required by moreau-* methods)")
    add_oracle_args(p)   # --inner, --kappa, --tau, ... and --oracle-option KEY=VALUE
    p.add_argument("--epochs", type=nonnegative_int, default=10)
    p.add_argument("--batch-size", type=nonnegative_int, default=32,
                   help="mini-batch size (0: full batches)")
    p.add_argument("--weight-decay", type=nonnegative_float, default=0.0,
                   help="mu of the layer-wise l2 regularizer mu/2 |w_t|^2 (D.6)")
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="split (digits), initialization and shuffling")
    p.add_argument("--n-train", type=positive_int, default=None,
                   help="keep the first N training samples")
    p.add_argument("--n-test", type=positive_int, default=None,
                   help="keep the first N test samples")
    p.add_argument("--json", default=None, metavar="PATH|-", help="write the result as JSON")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write result.json, weights.npz, curves.png, confusion.png")
    add_quiet(p)
    p.set_defaults(func=run)
    return p
