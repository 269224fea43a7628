"""Model families: what differs between kinds of network in fitting and packaging.

The codec runs one pipeline (prepare → fit → package → judge → write) and asks the
family of the arch for the few things that differ:

- `weights.WeightOnly`: networks that store only their weights (SIREN, FINER, SPDER,
  SL2A, tiled or not). A rate is met by sizing the network, so targets search widths
  or the size ladder, and every tensor gets a quantization step by rate–distortion.
- `latent_grids.LatentGrids`: latent grids + a small synthesis (`grid`), for signals of
  1, 2 or 3 dimensions alike. A rate is met by the λ of D + λ·R during training; the
  latents are trained for step 1 and entropy-coded, the weights' steps follow that λ.

A family is chosen by the arch alone (`family_for`): adding one means adding a module
here, not a branch in the codec.
"""

from __future__ import annotations

from inrcodec.families.base import Family, Fitted


def family_for(arch: str) -> Family:
    """The family an arch belongs to: latent grids if it stores grids that follow the
    signal, else a weight-only network."""
    from inrcodec.families.latent_grids import LatentGrids
    from inrcodec.families.weights import WeightOnly
    from inrcodec.models import has_latents

    return LatentGrids() if has_latents(arch) else WeightOnly()


__all__ = ["Family", "Fitted", "family_for"]
