"""The paper's analyses: descriptor variance (Figs. 2, 3), binding statistics (Fig. 5),
force decomposition (Fig. 1), learning curves, and the shared plotting style."""
