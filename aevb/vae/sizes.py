"""The sizes a VAE takes when the user leaves them unset: chosen from the data's shape.

- Latent size: half the features, at most 16 (20 from 256 features on). A code
  as wide as the data lets the decoder spend dimensions on noise: on 5-D rows
  near a 1-D curve, 2 latents scored 1.03 nats/row held out against 1.86 with
  16 (``benchmarks/suite.py``). Unused dimensions of a wide code collapse to the
  prior and cost little, so the cap matters less than the floor.
- Hidden layers: two of 256, or two of 512 from 256 features on, where a wider
  body reached a better held-out likelihood in the same wall-clock time on
  28x28 binarized digits although it ran fewer epochs.

Explicit options always win; the choice is made once per fit, saved in
``config.json`` and the checkpoint, so a saved model rebuilds the same network.
"""

from __future__ import annotations

# From this many features on, the wider body and code.
WIDE_FEATURES = 256


def automatic(params: dict, n_rows: int, n_features: int) -> tuple[dict, str]:
    """Values for ``latent_dim`` and ``hidden`` where ``params`` leaves them None, and one
    line saying what was chosen and why (empty when nothing was)."""
    wide = n_features >= WIDE_FEATURES
    chosen, why = {}, []
    if params.get("latent_dim", 0) is None:
        chosen["latent_dim"] = 20 if wide else max(1, min(16, n_features // 2))
        why.append(f"latent_dim {chosen['latent_dim']} ({'20 from 256 features' if wide else 'half the features, at most 16'})")
    if "hidden" in params and params["hidden"] is None:
        chosen["hidden"] = (512, 512) if wide else (256, 256)
        width = chosen["hidden"][0]
        why.append(f"hidden {width},{width} ({'512 from 256 features' if wide else 'below 256 features'})")
    if not chosen:
        return {}, ""
    flags = " / ".join("--" + name.replace("_", "-") for name in chosen)
    return chosen, f"sizes for {n_features} features: {'; '.join(why)}; set {flags} to choose"
