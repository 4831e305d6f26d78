"""Which renderer an edit uses: the geometric warp, or an actor's (or the shot's own) neural
renderer, trained first when ``--renderer neural`` asks for one that does not exist yet."""

from __future__ import annotations

from pathlib import Path

from facepipe.errors import WeightsMissingError
from facepipe.render.neural.config import RendererConfig
from facepipe.render.neural.library import shot_renderer_path


def resolve_renderer(ctx, settings, may_train: bool, log=print) -> str:
    """The checkpoint an edit's render node loads ("": the geometric renderer), per
    ``settings.renderer``: ``geometric``; ``auto`` the actor's (or shot's) renderer when it
    exists; ``neural`` that one, trained on this shot first (``settings.renderer_minutes``) when
    missing, if ``may_train``: a farm chunk must not (every chunk must use the same renderer) and
    a preview should not (it is for a quick look)."""
    if settings.renderer == "geometric":
        return ""
    path = shot_renderer_path(ctx.cache.root, settings.actor, settings.actor_library)
    if path.is_file():
        return str(path)
    if settings.renderer == "auto":
        return ""
    if not may_train:
        raise WeightsMissingError(f"no neural renderer at {path}: train it first "
                                  f"(facepipe train renderer {Path(ctx.media.path).name}"
                                  f"{' --actor ' + settings.actor if settings.actor else ''})")
    log(f"edit: no renderer trained for this {'actor' if settings.actor else 'shot'} yet; "
        f"training one for {settings.renderer_minutes:g} min")
    from facepipe.jobs.train_renderer import train_on_shot  # lazy: training imports diffusers (1 s); most edits never train

    config = RendererConfig.for_device(ctx.device)
    # it trains on the frames this edit refines: the restored ones when they are delivered
    train_on_shot(ctx, path, config, None, settings.renderer_minutes, settings.actor, settings.face, log, settings.deblur,
                  settings.delivered_deblur)  # fmt: skip
    return str(path)
