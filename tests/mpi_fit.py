"""Run under mpiexec by tests/test_scale.py: data-parallel fit on every rank, then each rank writes its final
parameters (and rank 0 a checkpoint through rk.save_checkpoint, which only rank 0 writes under MPI).

    mpiexec -n 2 python tests/mpi_fit.py OUT_DIR
"""
import sys

import numpy as np

import rnnkit as rk
from scale_data import make_model, make_data

out = sys.argv[1]
x, y, lengths = make_data()
model = make_model()
opt = rk.optim.Adam(model, lr=1e-2)
history = model.fit(x, y, epochs=2, batch_size=8, optimizer=opt, lengths=lengths, seed=3, verbose=0,
                    validation_data=(x[:, :5], y[:, :5], lengths[:5]), distributed=True)
r, n = rk.distributed.rank(), rk.distributed.size()
np.savez(f"{out}/rank{r}.npz", size=n, loss=np.array(history["loss"]), val=np.array(history["val_loss"]),
         **model.state_dict())
rk.save_checkpoint(f"{out}/ckpt.safetensors", model, opt, epoch=2)
