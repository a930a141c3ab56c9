"""One compiled or PyNative training step: gradients, device averaging, loss scaling and the optimizers' updates
(shared by every task trainer through :mod:`mindediting.engine.train_loop`)."""


def build_loss_scaler(opts):
    """``mindspore.amp`` loss scaler of the ``loss_scale*`` options, or None (no scaling)."""
    from mindspore import amp

    kind = opts.get("loss_scale_type") or ("dynamic" if opts.get("amp_level") in ("O2", "O3") else "none")
    if kind == "none":
        return None
    if kind == "static":
        return amp.StaticLossScaler(float(opts["loss_scale"]))
    return amp.DynamicLossScaler(float(opts["loss_scale"]), int(opts["scale_factor"]), int(opts["scale_window"]))


def build_step(loss_fn, optimizers, world_size=1, jit=False, scaler=None):
    """One training step ``step(*inputs) -> loss``: gradients of ``loss_fn`` with respect to the parameters of
    ``optimizers`` (in order), averaged over devices when ``world_size > 1``, then each optimizer updates its own
    parameters. ``jit`` compiles the whole step with ``mindspore.jit`` (``system.mode: graph``).

    ``scaler`` (a ``mindspore.amp`` loss scaler): the gradients are those of ``scale(loss)``, unscaled after the
    device average; when any is not finite no optimizer steps (their step counts stay) and the scaler adjusts.
    The returned loss is the unscaled one.
    """
    import mindspore as ms
    from mindspore import amp, nn, ops

    params, bounds = [], []
    for opt in optimizers:
        bounds.append((len(params), len(params) + len(opt.parameters)))
        params.extend(opt.parameters)
    reducer = nn.DistributedGradReducer(params, mean=True, degree=world_size) if world_size > 1 else None

    def update(grads):
        for opt, (start, end) in zip(optimizers, bounds):
            opt(tuple(grads[start:end]))

    if scaler is None:
        grad_fn = ms.value_and_grad(loss_fn, None, params)

        def step(*inputs):
            loss, grads = grad_fn(*inputs)
            if reducer is not None:
                grads = reducer(grads)
            update(grads)
            return loss
    else:
        def scaled_loss(*inputs):
            return scaler.scale(loss_fn(*inputs))

        grad_fn = ms.value_and_grad(scaled_loss, None, params)

        def step(*inputs):
            loss, grads = grad_fn(*inputs)
            if reducer is not None:
                grads = reducer(grads)
            # after the reduction: every rank sees the same verdict and skips (or applies) the same update
            finite = amp.all_finite(grads)
            if finite:
                update(scaler.unscale(grads))
            loss = ops.depend(scaler.unscale(loss), scaler.adjust(finite))
            return loss

    return ms.jit(step) if jit else step
