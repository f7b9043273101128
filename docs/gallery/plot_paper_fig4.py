"""
The paper's Fig. 4: networks trained by SGD, Moreau SGD, Adam and SVGD
======================================================================

``demos/paper_fig4.py`` at gallery size: the digits MLP on 500 training images, 5 epochs,
steps on a grid of 2 around each method's center, chosen by the paper's rule (smallest
area under the best-so-far training loss). The README has the full-size runs (digits MLP
and ConvNet, Fashion-MNIST).
"""
from _gallery import run, show, table  # docs/gallery/_gallery.py (docs/conf.py puts it on sys.path)

out = run("paper_fig4", "--experiments", "digits:mlp", "--epochs", "5", "--width", "1",
          "--n-train", "500", "--executor", "serial")
table(out, "table.md")

# %%
show(out, "fig4.png")
