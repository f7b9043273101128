"""The long paper's Fig. 4: mini-batch SGD vs Moreau SGD (MorSGD), plus Adam, Moreau-Adam and
SVGD, on an MLP and the paper's ConvNet.

Each method's step is chosen on a grid of powers of 2 by the paper's rule (F.2: the
smallest area under the best-so-far training-loss curve); the figure shows, per experiment,
the best-so-far training objective per epoch of each method's chosen run (the paper's
y-axis), and the table its test accuracy.

Experiments (``--experiments``, ``DATASET:ARCH`` pairs): ``digits:mlp`` and
``digits:convnet`` by default, and ``fashion-mnist:mlp`` (the first ``--fashion-n-train``
training images) when Debian's ``dataset-fashion-mnist`` files are present. Settings follow
E.1.2/E.2.2 where they carry over: the MLP (hidden layers ``--hidden``, each "an affine layer
followed by a ReLU") is trained with the squared loss, the ConvNet with the logistic
(cross-entropy) loss, layer-wise weight decay ``mu = 1e-6``; MorSGD uses gamma = 1 on the MLP
and gamma = 0.5 on the ConvNet (the paper's grid-search results), Moreau-Adam the same gamma
and a prox step alpha = 1/16; batch 32.

    python demos/paper_fig4.py --out results/fig4                  # ~10 min on 2 cores
    python demos/paper_fig4.py --experiments digits:mlp --epochs 3 --width 1 --n-train 300 \\
        --executor serial --out /tmp/fig4                         # seconds
"""
from __future__ import annotations

import argparse
import os
import sys

from moreauctl import datasets, studies
from moreauctl._io import write_text_atomic
from moreauctl.cli.args import add_quiet, int_list, nonnegative_int, positive_int
from moreauctl.plots import _plt, save_figure

#: method label -> (settings, center exponent of the step grid 2^(c-width) .. 2^(c+width-1));
#: ``{gamma}`` is the experiment's MorSGD gamma
METHODS = {
    "SGD": ({"method": "sgd"}, -2),
    "MorSGD": ({"method": "moreau-sgd"}, -1),
    "Adam": ({"method": "adam"}, -8),
    # Adam on the Moreau direction g / alpha; alpha = 1 (moreau-adam's default) gives
    # erratic directions on these networks (training diverges at every learning rate on
    # Fashion-MNIST, as MorSGD does at steps >= 2^-2), so the prox step is 1/16
    "Moreau-Adam": ({"method": "moreau-adam", "oracle_options": {"alpha": 2.0 ** -4}}, -8),
    "SVGD": ({"method": "svgd"}, -3),
}
#: per architecture: loss and MorSGD's gamma (E.2.2)
ARCH_SETTINGS = {"mlp": {"loss": "squared", "gamma": 1.0},
                 "convnet": {"loss": "cross_entropy", "gamma": 0.5}}


def default_experiments():
    exps = ["digits:mlp", "digits:convnet"]
    if os.path.isdir(datasets.FASHION_MNIST_DIR):
        exps.append("fashion-mnist:mlp")
    return exps


def parse_experiments(text):
    out = []
    for part in text.split(","):
        ds, sep, arch = part.strip().rpartition(":")
        if not sep or arch not in ARCH_SETTINGS or not ds:
            raise argparse.ArgumentTypeError(
                f"experiments are DATASET:ARCH pairs with ARCH in {sorted(ARCH_SETTINGS)}; "
                f"got {part!r}")
        out.append(f"{ds}:{arch}")
    return out


def task_for(exp, args):
    ds, _, arch = exp.rpartition(":")
    task = {"dataset": ds, "arch": arch, "hidden": list(args.hidden) if arch == "mlp" else [],
            "loss": ARCH_SETTINGS[arch]["loss"], "batch_size": args.batch_size,
            "weight_decay": args.weight_decay, "seed": args.seed}
    if ds.startswith("fashion-mnist"):
        task.update(n_train=args.fashion_n_train, n_test=args.fashion_n_test)
    elif args.n_train is not None:
        task.update(n_train=args.n_train)
    return task


def methods_for(exp, width):
    arch = exp.rpartition(":")[2]
    out = {}
    for label, (st, c) in METHODS.items():
        st = dict(st, steps=studies.powers_of_two(c - width, c + width - 1) if width else
                  (2.0 ** c,))
        if st["method"].startswith("moreau"):
            st["gamma"] = ARCH_SETTINGS[arch]["gamma"]
        out[label] = st
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="results/fig4")
    ap.add_argument("--experiments", type=parse_experiments, default=None,
                    help="comma-separated DATASET:ARCH (default: digits:mlp,digits:convnet, "
                         "plus fashion-mnist:mlp when present)")
    ap.add_argument("--epochs", type=nonnegative_int, default=20)
    ap.add_argument("--width", type=nonnegative_int, default=4,
                    help="each grid is 2^(c-width)..2^(c+width-1) around the method's center "
                         "c (0: the center only)")
    ap.add_argument("--hidden", type=int_list, default=int_list("64,64"))
    ap.add_argument("--batch-size", type=positive_int, default=32)
    ap.add_argument("--weight-decay", type=float, default=1e-6)
    ap.add_argument("--seed", type=nonnegative_int, default=0)
    ap.add_argument("--n-train", type=positive_int, default=None,
                    help="keep the first N training samples (digits)")
    ap.add_argument("--fashion-n-train", type=positive_int, default=10000)
    ap.add_argument("--fashion-n-test", type=positive_int, default=2000)
    ap.add_argument("--workers", type=positive_int, default=None)
    ap.add_argument("--executor", default=None, choices=["process", "serial", "thread"])
    add_quiet(ap)
    args = ap.parse_args(argv)
    exps = args.experiments or default_experiments()
    results = {}
    for exp in exps:
        if not args.quiet:
            print(f"== {exp}", flush=True)
        results[exp] = studies.training_grid(
            task_for(exp, args), methods_for(exp, args.width), epochs=args.epochs,
            seed=args.seed, criterion="auc", executor=args.executor, workers=args.workers,
            out=os.path.join(args.out, exp.replace(":", "-").replace("/", "_")),
            progress=not args.quiet)
    table = [f"Best-so-far training loss and test accuracy, {args.epochs} epochs, batch "
             f"{args.batch_size}; steps chosen by the smallest area under the best-so-far "
             "training loss (F.2).", ""]
    for exp, s in results.items():
        t = s.settings["task"]
        table += [f"### {exp} (loss {t['loss']}, {s.n_nonfinite} non-finite runs)", "",
                  s.to_markdown(), ""]
    text = "\n".join(table)
    write_text_atomic(os.path.join(args.out, "table.md"), text)
    plt = _plt()
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, (exp, s) in zip(axes.flat, results.items()):
        s.plot(ax=ax, title=exp)
    fig.suptitle("SGD vs Moreau SGD (and Adam, Moreau-Adam, SVGD): best training loss so far")
    fig.tight_layout()
    save_figure(fig, os.path.join(args.out, "fig4.png"))
    if not args.quiet:
        print(text)
        print(f"wrote {args.out}/table.md and {args.out}/fig4.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
