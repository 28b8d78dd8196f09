"""Wong–Kolter, DiffAI and IBP training on Digits; I_V; the ε and κ schedules, checked against the study's code; the
study's choice of the dual model (BestRobustCheckpoint)."""

from types import SimpleNamespace

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import yaml

import privrob.bounds.zonotope as zonotope
from callbacks import BestRobustCheckpoint
from privrob.bounds import margin_lower_bounds, worst_case_logits
from privrob.data import DigitsDataModule
from privrob.methods import DiffAITraining, IBPTraining, NaturalTraining, WongKolterTraining, piecewise_constant
from privrob.models import DigitsCNN
from privrob.privacy import Adversarial, Verified, score_examples
from privrob.privacy.evaluation import seeded_subset
from tests.conftest import ROOT, quiet_trainer

EPS = 0.1
MAKERS = {
    "ibp": lambda: IBPTraining(DigitsCNN(width=2), eps=EPS, warmup_steps=30, ramp_steps=150, lr=3e-3),
    "diffai": lambda: DiffAITraining(DigitsCNN(width=2), eps=EPS, warmup_epochs=1, ramp_epochs=4, lr=3e-3),
    "wong_kolter": lambda: WongKolterTraining(DigitsCNN(width=2), eps=EPS, eps_start=0.001, ramp_epochs=4,
                                              projections=20, lr=3e-3),
}


def _train(model, epochs=10):
    torch.manual_seed(0)
    pl.seed_everything(0, verbose=False)
    dm = DigitsDataModule(batch_size=32, seed=0)
    quiet_trainer(max_epochs=epochs, limit_val_batches=0).fit(model, dm)
    return model.eval(), dm


def _verified_accuracy(model, dm, method):
    rows = score_examples(model, dm.nonmembers(), torch.arange(400), Verified(eps=EPS, methods=(method,)), 200,
                          torch.device("cpu")).compute()
    return float(rows["correct"].double().mean())


@pytest.fixture(scope="module")
def natural():
    return _train(NaturalTraining(DigitsCNN(width=2), lr=3e-3))


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_verifiable_training_certifies_what_natural_cannot(name, natural):
    model, dm = _train(MAKERS[name]())
    method = model.certified_methods[0]
    robust, plain = _verified_accuracy(model, dm, method), _verified_accuracy(natural[0], natural[1], method)
    print(f"{name}: verified accuracy at eps {EPS} ({method}) {robust:.3f}, natural {plain:.3f}")
    assert plain < 0.15 and robust > plain + 0.3


@pytest.mark.parametrize("method", ["ibp", "box", "crown_ibp", "dual", "zonotope"])
def test_verified_score_never_above_attacked_score(method, trained_digits):
    model, dm = trained_digits
    xs, ys = zip(*[dm.members()[i] for i in range(64)])
    x, y = torch.stack(xs), torch.stack(ys)
    s_v, _ = Verified(eps=0.05, methods=(method,))(model, x, y)
    s_a, _ = Adversarial(eps=0.05, steps=20)(model, x, y)
    assert bool((s_v <= s_a + 1e-6).all())


def test_verified_falls_back_when_the_tightest_does_not_fit(trained_digits):
    model, dm = trained_digits
    x, y = dm.members()[0]
    v = Verified(eps=0.05, methods=("dual", "ibp"))
    v(model, x[None], y[None])
    assert v.used == "dual"
    original = zonotope.check_memory
    with pytest.MonkeyPatch.context() as mp:  # a budget nothing fits in
        mp.setattr(zonotope, "check_memory", lambda shapes, layers, batch, budget, what: original(
            shapes, layers, batch, 1e-9, what))
        v(model, x[None], y[None])
    assert v.used == "ibp"


def _at(module, step, batches_per_epoch=1, epoch=None):
    """Make ``module`` believe it is at optimizer step ``step`` (of epoch ``epoch``, default step // batches) of a
    run with ``batches_per_epoch``."""
    epoch = step // batches_per_epoch if epoch is None else epoch
    module._trainer = SimpleNamespace(num_training_batches=batches_per_epoch, accumulate_grad_batches=1,
                                      global_step=step, current_epoch=epoch)
    return module


def test_ibp_schedule():
    m = IBPTraining(DigitsCNN(width=1), eps=0.1, warmup_steps=500, ramp_steps=6500)
    expected = {0: (0.0, 1.0), 500: (0.0, 1.0), 3750: (0.05, 0.75), 7000: (0.1, 0.5), 20000: (0.1, 0.5)}
    for step, (eps, kappa) in expected.items():
        assert _at(m, step).schedule() == pytest.approx((eps, kappa))


def _config(name):
    return yaml.safe_load((ROOT / "configs" / name).read_text())


def _config_init_args(name):
    init_args = dict(_config(name)["model"]["init_args"])
    init_args.pop("backbone")
    return init_args


def _study_diffai(train_batches, test_batches, epochs=100):
    """(epoch from 0, batch, robust loss?, t) of every training step, as DiffAI's main.py (Yale and FMNIST): for
    epoch = 1, 2, ...: test() on the train and the test loader, each boxSpec call ``count += 1``, then train(),
    ``count += 1`` per batch, t = min(max(N, count − 20N), 30N)/(30N), the robust loss unless epoch < 20."""
    n, count = train_batches, 0
    for epoch in range(1, epochs + 1):
        count += test_batches
        for batch in range(n):
            count += 1
            yield epoch - 1, batch, not epoch < 20, min(max(n, count - 20 * n), 30 * n) / (30 * n)


@pytest.mark.parametrize("config,train_batches,test_batches,first_t,full_at", [
    ("yale_diffai.yaml", 95, 25 + 25, 906 / 2850, (32, 59)),  # 1,900 members and 500 + 500 tested, batch 20
    ("fmnist_diffai.yaml", 600, 50 + 50, 1401 / 18000, (42, 499)),  # 60,000 members, 5,000 + 5,000, batch 100
    # the CPU cuts: Yale's is the study's schedule; Fashion-MNIST's 10,000 members with the test passes scaled
    ("cpu/yale_diffai.yaml", 95, 25 + 25, 906 / 2850, (32, 59)),
    ("cpu/fmnist_diffai.yaml", 100, 17, 241 / 3000, (42, 68)),
])
def test_diffai_schedule_is_the_studys(config, train_batches, test_batches, first_t, full_at):
    init_args = _config_init_args(config)
    m, eps = DiffAITraining(DigitsCNN(width=1), **init_args), init_args["eps"]
    robust = []
    for epoch, batch, is_robust, t in _study_diffai(train_batches, test_batches):
        assert _at(m, epoch * train_batches + batch, train_batches).current_eps() == pytest.approx(eps * t, abs=1e-12)
        if is_robust:
            robust.append((epoch, batch, t))
        assert (m.current_epoch >= m.hparams.warmup_epochs) == is_robust
    assert robust[0][:2] == (19, 0) and robust[0][2] == pytest.approx(first_t)
    assert next((e, b) for e, b, t in robust if t == 1.0) == full_at


def _trainer_at(m, epoch, step):
    _at(m, step, 10, epoch)
    m.log = lambda *args, **kwargs: None
    return m


def test_diffai_warms_up_19_epochs():
    torch.manual_seed(0)
    m = DiffAITraining(DigitsCNN(width=1), eps=0.1)
    x, y = torch.rand(8, 1, 8, 8), torch.arange(8)
    clean = torch.nn.functional.cross_entropy(m(x), y)
    assert torch.equal(_trainer_at(m, 18, 189).training_loss(x, y)[0], clean)  # 0-based epoch 18 = the study's 19
    loss = _trainer_at(m, 19, 190).training_loss(x, y)[0].item()
    assert loss == pytest.approx(float(_diffai_loss(m, x, y, 0.1 / 30, clip=False)), rel=1e-6) and loss != float(clean)


def test_wong_kolter_warms_up_at_eps_0_then_ramps(monkeypatch):
    # warmup_epochs W: ε = 0 in epochs 0..W−1, where the bound's loss is the logits' cross-entropy, computed without
    # the bound; then the study's per-epoch ramp from epoch W
    torch.manual_seed(0)
    m = WongKolterTraining(DigitsCNN(width=1), eps=0.1, eps_start=0.01, ramp_epochs=3, warmup_epochs=2, projections=5)
    x, y = torch.rand(8, 1, 8, 8), torch.arange(8)
    clean = torch.nn.functional.cross_entropy(m(x), y)
    for bound in ("dual", "dual_projected"):   # the margins z_j − z_y at ε = 0, whose cross-entropy is the logits'
        at_zero = worst_case_logits(m.backbone, x, y, 0.0, bound, clip=False, projections=5)
        assert torch.nn.functional.cross_entropy(at_zero, y).item() == pytest.approx(clean.item(), rel=1e-6)
    expected = [0.0, 0.0, *np.linspace(0.01, 0.1, 3), 0.1, 0.1]
    assert [_at(m, 10 * e + 9, 10).current_eps() for e in range(7)] == pytest.approx(expected, abs=1e-12)
    bounded, logged = [], []
    monkeypatch.setattr("privrob.methods.wong_kolter.worst_case_logits",
                        lambda *args, **kwargs: bounded.append(args[3]) or worst_case_logits(*args, **kwargs))
    for epoch in range(4):
        _trainer_at(m, epoch, 10 * epoch).log = lambda name, value, **kwargs: logged.append((name, value))
        loss, logits = m.training_loss(x, y)
        if epoch < 2:   # the bound not called
            assert torch.equal(loss, clean) and torch.equal(logits, m(x)) and bounded == []
        else:   # the ramp's first epoch is bounded, at eps_start
            assert loss.item() > clean.item()
    assert bounded == pytest.approx([0.01, 0.055])
    assert [name for name, _ in logged] == ["train/eps"] * 4
    assert [value for _, value in logged] == pytest.approx([0.0, 0.0, 0.01, 0.055])
    with pytest.raises(ValueError, match="warmup_epochs"):
        WongKolterTraining(DigitsCNN(width=1), warmup_epochs=-1)


def test_wong_kolter_ramps_per_step(monkeypatch):
    # ramp_unit="step": linspace(eps_start, eps, R·N) over the ramp's R·N steps, after W epochs at 0, then eps
    torch.manual_seed(0)
    m = WongKolterTraining(DigitsCNN(width=1), eps=0.1, eps_start=0.01, ramp_epochs=2, warmup_epochs=1,
                           ramp_unit="step", projections=5)
    expected = [0.0] * 10 + list(np.linspace(0.01, 0.1, 20)) + [0.1] * 10
    assert [_at(m, s, 10).current_eps() for s in range(40)] == pytest.approx(expected, abs=1e-12)
    assert _at(m, 10, 10).current_eps() == 0.01 and _at(m, 29, 10).current_eps() == pytest.approx(0.1, abs=1e-12)
    bounded = []
    monkeypatch.setattr("privrob.methods.wong_kolter.worst_case_logits",
                        lambda *args, **kwargs: bounded.append(args[3]) or worst_case_logits(*args, **kwargs))
    x, y = torch.rand(4, 1, 8, 8), torch.arange(4)
    for step in (5, 12, 35):
        _trainer_at(m, step // 10, step).training_loss(x, y)
    assert bounded == pytest.approx([expected[12], 0.1])   # step 5 is plain cross-entropy
    no_ramp = WongKolterTraining(DigitsCNN(width=1), eps=0.1, ramp_epochs=0, warmup_epochs=1, ramp_unit="step")
    assert [_at(no_ramp, s, 10).current_eps() for s in (9, 10, 25)] == [0.0, 0.1, 0.1]
    with pytest.raises(ValueError, match="ramp_unit"):
        WongKolterTraining(DigitsCNN(width=1), ramp_unit="epochs")


class _EpsAtSteps(pl.Callback):
    def __init__(self):
        self.seen = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.append((trainer.current_epoch, trainer.global_step, pl_module.current_eps()))


def test_wong_kolter_step_ramp_counts_optimizer_steps_under_gradient_accumulation():
    # 5 batches an epoch accumulated by 2: Lightning steps after batches 2, 4 and the epoch's last, so an epoch is 3
    # optimizer steps and the one-epoch ramp linspace(0.01, 0.1, 3) over global steps 3-5, after one warm-up epoch
    torch.manual_seed(0)
    m = WongKolterTraining(DigitsCNN(width=1), eps=0.1, eps_start=0.01, ramp_epochs=1, warmup_epochs=1,
                           ramp_unit="step", projections=2)
    seen = _EpsAtSteps()
    quiet_trainer(max_epochs=3, limit_train_batches=5, limit_val_batches=0, accumulate_grad_batches=2,
                  callbacks=[seen]).fit(m, DigitsDataModule(batch_size=2, seed=0))
    ramp = np.linspace(0.01, 0.1, 3)
    assert [(e, s) for e, s, _ in seen.seen] == [(0, 0), (0, 0), (0, 1), (0, 1), (0, 2), (1, 3), (1, 3), (1, 4),
                                                 (1, 4), (1, 5), (2, 6), (2, 6), (2, 7), (2, 7), (2, 8)]
    assert [eps for _, _, eps in seen.seen] == pytest.approx([0.0] * 5 + [ramp[0]] * 2 + [ramp[1]] * 2 + [0.1] * 6)


def _diffai_loss(m, x, y, eps, clip):
    """(w·softplus(max(−1, max_{j≠y} ub(z_j − z_y))) + CE)/(w + 1), the study's aiLoss, from the box bounds."""
    w = m.hparams.robust_weight
    worst = -margin_lower_bounds(m, x, y, eps, "box", clip=clip)
    worst[torch.arange(len(y)), y] = -1.0
    robust = torch.nn.functional.softplus(worst.amax(dim=1)).mean()
    return (w * robust + torch.nn.functional.cross_entropy(m(x), y)) / (w + 1)


def test_diffai_box_is_not_clipped():
    torch.manual_seed(0)
    m = _trainer_at(DiffAITraining(DigitsCNN(width=2), eps=0.1, warmup_epochs=0, ramp_epochs=1), 0, 0)
    x = (torch.rand(16, 1, 8, 8) > 0.5).float()  # every pixel 0 or 1: the box reaches outside [0, 1]
    y = torch.arange(16) % 10
    loss = m.training_loss(x, y)[0].item()
    assert loss == pytest.approx(float(_diffai_loss(m, x, y, 0.1, clip=False)), rel=1e-6)
    assert abs(loss - float(_diffai_loss(m, x, y, 0.1, clip=True))) > 1e-3


def test_diffai_robust_term_stops_at_margin_one():
    m = _trainer_at(DiffAITraining(DigitsCNN(width=1), eps=0.1, warmup_epochs=0, ramp_epochs=1), 0, 0)
    last = m.backbone[-1]
    with torch.no_grad():  # logits 0 except 100 for class 3, whatever the input: every margin is certified by 100
        last.weight.zero_()
        last.bias.zero_()
        last.bias[3] = 100.0
    x, y = torch.rand(4, 1, 8, 8), torch.full((4,), 3)
    w = m.hparams.robust_weight
    clean = torch.nn.functional.cross_entropy(m(x), y)
    expected = (w * torch.nn.functional.softplus(torch.tensor(-1.0)) + clean) / (w + 1)
    assert m.training_loss(x, y)[0].item() == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize("config,epochs,start,eps,ramp", [("yale_dual.yaml", 181, 0.0001, 0.06275, 80),
                                                          ("fmnist_dual.yaml", 61, 0.003, 0.1, 20)])
def test_wong_kolter_schedule_is_the_studys(config, epochs, start, eps, ramp):
    # train_Yale.py: eps_schedule = np.linspace(starting_epsilon, epsilon, schedule_length), eps_schedule[t] in
    # epoch t while t < schedule_length, then epsilon; the learning rate: StepLR(25, 0.5) (FMNIST: (15, 0.1))
    # stepped with epoch=max(t − schedule_length, 0) before each epoch
    init_args = _config_init_args(config)
    m = WongKolterTraining(DigitsCNN(width=1), **init_args)
    schedule = np.linspace(start, eps, ramp)
    step_size, gamma = (25, 0.5) if config.startswith("yale") else (15, 0.1)
    lr = piecewise_constant(init_args["lr_schedule"], init_args["lr"])
    for epoch in range(epochs):
        study = float(schedule[epoch]) if epoch < ramp else eps
        for batch in (0, 4, 9):  # constant within the epoch
            assert _at(m, 10 * epoch + batch, 10).current_eps() == study
        assert init_args["lr"] * lr(epoch) == pytest.approx(1e-4 * gamma ** (max(epoch - ramp, 0) // step_size))


def test_cpu_fmnist_dual_keeps_the_studys_ramp_and_cuts_only_its_tail():
    # configs/cpu/fmnist_dual.yaml: the study's 20-epoch eps ramp whole, then 6 epochs at eps 0.1, two at each of
    # the study's three learning rates (1e-4, 1e-5, 1e-6) instead of 15, 15 and 11
    init_args = _config_init_args("cpu/fmnist_dual.yaml")
    config = _config("cpu/fmnist_dual.yaml")
    data = config["data"]["init_args"]
    batches = -(-data["num_members"] // data["batch_size"])   # 334 a member pass: the last batch partial
    assert config["trainer"]["max_epochs"] == 26
    m = WongKolterTraining(DigitsCNN(width=1), **init_args)
    schedule, lr = np.linspace(0.003, 0.1, 20), piecewise_constant(init_args["lr_schedule"], init_args["lr"])
    for epoch in range(26):
        for batch in (0, batches - 1):   # constant within the epoch
            eps = _at(m, batches * epoch + batch, batches).current_eps()
            assert eps == (float(schedule[epoch]) if epoch < 20 else 0.1)
        assert init_args["lr"] * lr(epoch) == pytest.approx(1e-4 * 0.1 ** max((epoch - 20) // 2, 0))


def test_cpu_yale_dual_warms_up_then_ramps_eps_per_step_over_one_epoch_and_trains_one_at_eps():
    # configs/cpu/yale_dual.yaml: 3 epochs at eps 0 (plain cross-entropy), then the study's eps ramp (0.0001 to
    # 0.06275) cut from 80 epochs to one of 95 steps and raised at every step, then one epoch at 0.06275, at the
    # study's lr 1e-4 throughout; the study's network, data, optimizer and training rules at width 1, 10 projections
    budget, study = _config("cpu/yale_dual.yaml"), _config("yale_dual.yaml")
    init_args, study_args = _config_init_args("cpu/yale_dual.yaml"), _config_init_args("yale_dual.yaml")
    net, study_net = (c["model"]["init_args"]["backbone"]["init_args"] for c in (budget, study))
    assert net == {**study_net, "width": 1} and init_args["projections"] == 10
    kept = ("eps", "eps_start", "bound", "clip_input", "optimizer", "lr", "weight_decay")
    assert {k: init_args[k] for k in kept} == {k: study_args[k] for k in kept}
    assert "warmup_epochs" not in study_args and init_args["warmup_epochs"] == 3
    assert "ramp_unit" not in study_args and "lr_schedule" not in init_args
    assert "clip_nan_steps" not in init_args and "clip_nan_steps" not in study_args   # the Yale trainer's rule
    assert budget["trainer"]["gradient_clip_val"] == study["trainer"]["gradient_clip_val"] == 1.0
    assert budget["seed_everything"] == study["seed_everything"]
    data = budget["data"]["init_args"]
    assert {k: data[k] for k in ("batch_size", "pad_to", "seed")} == {
        k: study["data"]["init_args"][k] for k in ("batch_size", "pad_to", "seed")}
    assert "num_members" not in data   # all 1,900 members
    assert budget["trainer"]["max_epochs"] == 5
    m = WongKolterTraining(DigitsCNN(width=1), **init_args)
    batches = -(-1900 // data["batch_size"])   # 95
    ramp = np.linspace(0.0001, 0.06275, batches)
    for epoch in range(5):
        for batch in range(batches):
            eps = _at(m, batches * epoch + batch, batches).current_eps()
            assert eps == pytest.approx(0.0 if epoch < 3 else ramp[batch] if epoch == 3 else 0.06275, abs=1e-12)


class _StepMoves(pl.Callback):
    """The norm of each optimizer step's change to the weights."""

    def __init__(self):
        self.norms = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.before = [p.detach().clone() for p in pl_module.parameters()]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        moved = torch.cat([(p.detach() - b).flatten() for p, b in zip(pl_module.parameters(), self.before)])
        assert torch.isfinite(moved).all()
        self.norms.append(float(moved.norm()))


@pytest.mark.parametrize("config,clip_nan_steps", [("yale_dual.yaml", True), ("fmnist_dual.yaml", False),
                                                   ("cpu/fmnist_dual.yaml", False)])
def test_wong_kolter_nan_steps_are_the_studys(config, clip_nan_steps):
    # trainer.train_robust: NaN gradient entries set to 0 (infinities kept); Yale's then clips the step, Fashion-MNIST's
    # (NAN_EXIST, reset every batch) steps unclipped; a step without NaN is clipped by both
    assert _config_init_args(config).get("clip_nan_steps", True) is clip_nan_steps
    for poisoned in (False, True):
        pl.seed_everything(0, verbose=False)
        m = WongKolterTraining(DigitsCNN(width=1), eps=0.01, eps_start=0.01, ramp_epochs=0, projections=5,
                               optimizer="sgd", lr=1.0, momentum=0.0, clip_nan_steps=clip_nan_steps)
        first = next(m.parameters())
        start, steps = first.detach().clone(), []

        def poison_first_step(g):   # a NaN in two entries of the first step's gradient only
            steps.append(len(steps))
            return g.flatten().index_fill(0, torch.tensor([0, 1]), float("nan")).view_as(g) if steps == [0] else g

        if poisoned:
            first.register_hook(poison_first_step)
        moves = _StepMoves()
        quiet_trainer(max_steps=2, limit_val_batches=0, gradient_clip_val=1e-3, callbacks=[moves]).fit(
            m, DigitsDataModule(batch_size=32, seed=0))
        clipped = clip_nan_steps or not poisoned
        assert (moves.norms[0] <= 1e-3 * (1 + 1e-4)) is clipped
        assert moves.norms[0] > (0.9e-3 if clipped else 1e-2)
        assert 0.9e-3 < moves.norms[1] <= 1e-3 * (1 + 1e-4)   # the next step, without NaN, is clipped again
        if poisoned:   # zeroed in the first step, so moved by the second only: less than its clipped norm
            assert (first.detach().flatten()[:2] - start.flatten()[:2]).norm() <= 1e-3 * (1 + 1e-4)
    for p in m.parameters():
        p.grad = torch.zeros_like(p)
    first.grad.view(-1)[:4] = torch.tensor([float("nan"), float("inf"), -float("inf"), 2.0])
    m.on_before_optimizer_step(None)
    assert first.grad.view(-1)[:4].tolist() == [0.0, float("inf"), -float("inf"), 2.0]   # infinities kept


def test_diffai_learning_rate_is_the_studys():
    # Yale main.py adjust_learning_rate(epoch), epochs from 1: ×0.01 from 0.85·100, ×0.1 from 0.7·100; FMNIST none
    for config in ("yale_diffai.yaml", "fmnist_diffai.yaml"):
        init_args = _config_init_args(config)
        lr = piecewise_constant(init_args.get("lr_schedule") or [], init_args["lr"])
        for epoch in range(1, 101):
            study = 1e-4 if config.startswith("fmnist") else 1e-4 * (0.01 if epoch >= 85 else 0.1 if epoch >= 70 else 1)
            assert init_args["lr"] * lr(epoch - 1) == pytest.approx(study)


def _wong_kolter_fit(tmp_path, callbacks, epochs, batches=2):
    pl.seed_everything(0, verbose=False)
    m = WongKolterTraining(DigitsCNN(width=1), eps=0.02, eps_start=0.002, ramp_epochs=10, projections=5, lr=3e-3)
    dm = DigitsDataModule(batch_size=32, seed=0)
    quiet_trainer(max_epochs=epochs, limit_train_batches=batches, limit_val_batches=0, default_root_dir=tmp_path,
                  callbacks=callbacks).fit(m, dm)
    return m, dm


class _Recorder(pl.Callback):
    """Each epoch's weights and whether best_robust.ckpt exists after it."""

    def __init__(self, path):
        self.path, self.weights, self.saved = path, [], []

    def on_train_epoch_end(self, trainer, pl_module):
        self.weights.append({k: v.clone() for k, v in pl_module.state_dict().items()})
        self.saved.append(self.path.exists())


def test_best_robust_keeps_the_strictly_lowest_epoch(tmp_path, monkeypatch):
    errors = [1.0, 0.6, 0.6, 0.4, 0.4, 0.9]  # 1.0 is never kept (the study's best_err starts at 1); ties keep the first
    best = BestRobustCheckpoint()
    monkeypatch.setattr(best, "robust_error", lambda trainer, module: errors[trainer.current_epoch])
    path = tmp_path / "checkpoints" / "best_robust.ckpt"
    recorder = _Recorder(path)
    _wong_kolter_fit(tmp_path, [best, recorder], len(errors))
    assert recorder.saved == [False, True, True, True, True, True]
    ckpt = torch.load(path, weights_only=False)
    assert ckpt["epoch"] == 3 and best.best == 0.4
    assert all(torch.equal(ckpt["state_dict"][k], v) for k, v in recorder.weights[3].items())
    assert not all(torch.equal(ckpt["state_dict"][k], v) for k, v in recorder.weights[4].items())


@pytest.mark.parametrize("shuffle", [False, True])
def test_best_robust_error_is_the_studys(tmp_path, monkeypatch, shuffle):
    import callbacks.best_robust as best_robust

    calls = []

    def spy(model, x, y, eps, method, **kwargs):
        worst = worst_case_logits(model, x, y, eps, method, **kwargs)
        calls.append(SimpleNamespace(x=x, y=y, eps=eps, method=method, training=model.training, worst=worst,
                                     eps_trained=model.current_eps(), **kwargs))
        return worst

    monkeypatch.setattr(best_robust, "worst_case_logits", spy)
    best = BestRobustCheckpoint(shuffle=shuffle, seed=3)
    m, dm = _wong_kolter_fit(tmp_path, [best], 1, batches=10)
    assert [len(c.y) for c in calls] == [5] * 22
    # trained at the ramp's start, evaluated at the full ε, in evaluation mode, with the training's bound
    assert {(c.eps_trained, c.eps, c.method, c.clip, c.projections, c.training) for c in calls} == {
        (0.002, 0.02, "dual_projected", True, 5, False)}
    indices = seeded_subset(len(dm.nonmembers()), 110, 3) if shuffle else torch.arange(110)
    x, y = zip(*[dm.nonmembers()[i] for i in indices.tolist()])
    assert torch.equal(torch.cat([c.x for c in calls]), torch.stack(x))
    wrong = torch.cat([c.worst.argmax(dim=1) != c.y for c in calls]).float().mean()
    assert float(m.trainer.callback_metrics["val/robust_error"]) == pytest.approx(float(wrong))
    assert 0 < wrong < 1 and best.best == pytest.approx(float(wrong))


def test_best_robust_selection_leaves_training_unchanged(tmp_path):
    """Its evaluation draws nothing from the global random streams (even an unshuffled DataLoader would)."""
    with_selection, _ = _wong_kolter_fit(tmp_path / "a", [BestRobustCheckpoint(num_points=20)], 2)
    without, _ = _wong_kolter_fit(tmp_path / "b", [], 2)
    assert all(torch.equal(v, without.state_dict()[k]) for k, v in with_selection.state_dict().items())


@pytest.mark.parametrize("cls,kwargs", [(WongKolterTraining, {"eps": -1.0}), (DiffAITraining, {"domain": "octagon"}),
                                        (IBPTraining, {"kappa_end": 2.0}), (IBPTraining, {"bound": "dual"})])
def test_bad_arguments(cls, kwargs):
    with pytest.raises(ValueError) as e:
        cls(DigitsCNN(width=1), **kwargs)
    assert "\n" not in str(e.value)


def test_diffai_trains_in_the_weight_norm_parametrisation():
    """DiffAI's components.py: nn.utils.weight_norm(dim=None) on every layer before Adam is built, g clamped after each
    step (clip_norm); the optimizer's parameters are (g, v, bias), so a step differs from one on w."""
    torch.manual_seed(0)
    m = DiffAITraining(DigitsCNN(width=1, init="diffai", padding="one", conv_bias=True), eps=0.05, max_weight_norm=2.0)
    names = [n for n, _ in m.named_parameters()]
    assert sum(n.endswith("original0") for n in names) == 4 and not any(n.endswith(".weight") for n in names)
    torch.manual_seed(0)
    plain = DiffAITraining(DigitsCNN(width=1, init="diffai", padding="one", conv_bias=True), eps=0.05,
                           weight_norm=False)
    layers = [l for l in m.backbone if isinstance(l, (torch.nn.Conv2d, torch.nn.Linear))]
    plain_layers = [l for l in plain.backbone if isinstance(l, (torch.nn.Conv2d, torch.nn.Linear))]
    assert all(torch.allclose(a.weight, b.weight) for a, b in zip(layers, plain_layers))  # same function at init
    x, y = torch.rand(8, 1, 8, 8), torch.randint(0, 10, (8,))
    for model in (m, plain):
        opt = torch.optim.Adam(model.parameters(), lr=0.1)
        model.training_loss(x, y)[0].backward()
        opt.step()
    assert not torch.allclose(layers[0].weight, plain_layers[0].weight, atol=1e-4)
    m.on_train_batch_end(None, None, 0)
    assert all(abs(float(l.parametrizations.weight.original0)) <= 2.0 for l in layers)


def test_diffai_weight_norm_refuses_a_zeroed_layer():
    with pytest.raises(ValueError, match="weight_norm"):
        DiffAITraining(DigitsCNN(width=1, init="trades", padding="one", conv_bias=True))
    DiffAITraining(DigitsCNN(width=1, init="trades", padding="one", conv_bias=True), weight_norm=False)
