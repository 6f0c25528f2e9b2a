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
np.savez(f"{out}/rank{r}.npz", size=n, threads=rk.get_num_threads(), loss=np.array(history["loss"]), val=np.array(history["val_loss"]),
         **model.state_dict())
rk.save_checkpoint(f"{out}/ckpt.safetensors", model, opt, epoch=2)

# dropout: each rank draws its own masks (offset streams), the averaged update keeps the ranks identical
drop = rk.Sequential([rk.LSTM(3, 8, num_layers=2, dropout=0.3, recurrent_dropout=0.2, seed=1), rk.Dense(8, 1, seed=2)])
drop.fit(x, y, epochs=1, batch_size=8, optimizer=rk.optim.Adam(drop, lr=1e-2), lengths=lengths, seed=3, verbose=0,
         distributed=True)
np.savez(f"{out}/dropout{r}.npz", rng=np.array(drop.rng_state), **drop.state_dict())
