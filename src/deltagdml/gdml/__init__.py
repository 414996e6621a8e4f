"""The sGDML core: descriptor, kernel, symmetries, the kernel expansion, the model and
its files, the composite Δ model, σ selection and the ASE calculator."""
