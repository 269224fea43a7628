"""The rate module: how inrcodec spends bits, for every arch and every medium.

- `coding`: integer codes at power-of-two steps, and their entropy coding (a range coder
  under a two-sided geometric model, or LZMA, whichever is smaller per tensor), exact on
  every machine.
- `latents`: the rate of latent grids: training's estimate (each latent priced by its
  neighbours' magnitude, or under a context model), and their stored form; `neighbours`:
  a latent grid predicted from its decoded neighbours, decoded in d + 1 vectorised passes.
- `steps`: the step of each tensor chosen by rate–distortion (D + λ·R), or to fit a byte
  budget.
"""
