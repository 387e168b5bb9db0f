"""Synthetic assistant telemetry with ground truth.

:func:`generate` makes events of schema v1 in *input* form (what a producer sends), for a
number of tenants over a number of days: sessions of ``session_start``, one or more ``turn``
events whose ``text`` and ``intent`` come from CLINC150 (:func:`load_clinc150`), sparse
``feedback``, occasional ``error`` and ``handoff`` events, and ``session_end``. Some texts hold
planted personal data (e-mails, phone numbers, Luhn-valid card numbers, IBANs, IPv4 addresses);
a few raw ``user_id`` values occur in two tenants on purpose (a user is the pair (tenant, user)).
Incidents are injected on known days, and :func:`truth` says where they are. :func:`write` puts
both on disk.

Everything is drawn from ``SynthConfig.seed``: the same config gives the same bytes (with the
same numpy and pyarrow versions), and each day has its own random stream, so days are generated
two at a time on two threads without changing the result. The period ends yesterday (UTC) unless
``start`` or ``end`` says otherwise, so that the data is recent as real telemetry is; give one of
them to make the same bytes on another day (the weekday of each day shapes its activity).

Volume
------
About 1.25 events per (tenant, user) per day with the default rates: a user is active on about
a fifth of the days, with 1.3 sessions of about 4.8 events each. ``tenants=20, users=200,
days=60`` makes about 0.3 M events; ``truth(config)["expected_events"]`` estimates the count of
any config without generating it (within a few percent), so for a target of ``N`` events pick
``tenants * users * days`` near ``N / 1.25`` (e.g. 10 M: ``tenants=50, users=2650, days=60``).

truth.json
----------
A JSON object (dates as ``YYYY-MM-DD``, days are UTC days, ``end`` inclusive):

``format``
    ``"assay.synth.truth/1"``.
``seed``, ``start``, ``end``, ``days``, ``config``
    The config that made the data (``config`` repeats every field of :class:`SynthConfig`, with
    the ``start`` it resolved to).
``expected_events``
    The expected number of events (the count :func:`write` reports is within a few percent).
``tenants``
    One object per tenant: ``tenant_id``, ``users`` (distinct users over the period),
    ``size_rank`` (0 = largest), ``locales`` (share of its users per locale),
    ``expected_dau_mean`` (mean over days of the expected number of active users).
``incidents``
    A list (empty when ``days < 28``). Each has ``kind``; ``tenant_id`` (null: every tenant);
    ``start`` and ``end`` (the affected days, inclusive); ``metric`` (the metric that shows
    it: ``dau``, ``handoff_rate`` or ``latency_p95``); ``slice`` (the breakdown where it shows,
    e.g. ``{"locale": "de-DE", "model_version": "v2.1"}``, ``{}`` for the whole tenant);
    ``factor``; and ``expected``, a sentence saying what a metric should show. By kind:

    - ``outage``: the activity of one mid-size tenant is multiplied by ``factor`` (0.15) for
      3-5 consecutive days, so its DAU drops by about 85% (at least 60%); the users who do come
      see ``error_rate`` (0.3) errors per turn. Also ``expected_dau_before`` (mean expected DAU
      of the 7 days before) and ``expected_dau_during``.
    - ``handoff_jump``: from ``start`` on, sessions of the largest tenant in one ``locale`` run
      ``model_version`` ``"v2.1"`` (every other session stays on ``baseline_model_version``
      ``"v2.0"``) and hand off with probability ``baseline_rate * factor`` (0.04 * 3.5)
      instead of ``baseline_rate``.
    - ``latency_regression``: from ``start`` on, every ``turn`` with ``prompt_template``
      ``"rag-v3"`` in every tenant takes ``factor`` (2) times as long, so every percentile
      doubles; ``baseline_p50_ms`` and ``baseline_p95_ms`` give the values before.
    - ``rag_release`` (only with ``SynthConfig(rag=True)``; no ``factor``): from ``start`` on,
      every ``"rag-v2"`` turn of every tenant runs ``prompt_template`` ``"rag-v4"``, which in
      one ``locale`` retrieves a relevant doc per slot with probability ``hit_rate["after"]``
      instead of ``hit_rate["before"]`` and cites less (``cite_relevant``, ``cite_other``):
      ``cited_rate`` of that locale falls, ``uncited_retrieved_share`` rises. With
      ``rag=True`` every RAG turn also carries ``attributes['query_id']`` and
      :func:`rag_qrels` gives the labelled set; ``truth.json`` then has a ``rag`` object (the
      rates) and ``config.rag``.
``seasonality``
    ``weekday_factors``: the activity multiplier per weekday (``monday`` ... ``sunday``).
``growth``
    ``daily_rate`` (activity multiplier ``(1 + daily_rate) ** day``), ``new_user_fraction``
    (share of users who first come during the period, on a uniform day, and are active that
    day), ``new_user_boost`` and ``new_user_boost_days`` (new users' extra activity
    ``boost * exp(-age / boost_days)``), ``churn_mean_days`` (mean of a user's exponential
    lifetime), and ``expected_dau``: the expected active users of all tenants, one number per
    day.
``rates``
    The behaviour rates: extra sessions per active day (Poisson mean), mean turns per session,
    per-session ``handoff`` and ``abandoned_sessions`` (no ``session_end``), per-turn ``error``
    and ``feedback``, ``rating_given`` per feedback, ``oos`` share of utterances.
``dimensions``
    The values of ``locale``, ``platform``, ``app_version``, ``model_version``,
    ``prompt_template``, ``flights`` and ``error_code`` that occur.
``pii``
    ``text_rate`` (share of turn texts with planted personal data), ``kinds`` (relative
    frequency of each kind), ``attribute_rate`` (share of ``session_start`` events with a
    contact detail in ``attributes``).
``event_time``
    ``offset_rate`` and ``offsets`` (share of events written with a non-UTC offset, and the
    offsets used), ``epoch_ms_rate`` (share written as integer epoch milliseconds in JSON Lines).
``users``
    ``total`` (distinct (tenant, user) pairs) and ``colliding_user_ids`` (how many of them
    reuse a raw ``user_id`` of the largest tenant).
``predictions``
    The model behind the predictions file that :func:`write` makes on request: ``rows``,
    ``label`` and ``score`` (the column names ``y_true`` and ``y_score``), ``positive_rate``,
    ``separation`` (of the score's Gaussian signal between the classes, in standard
    deviations), ``worse_slice`` (e.g. ``{"locale": "en-GB"}``, where the separation is only
    ``worse_separation``), ``expected_roc_auc`` and ``expected_roc_auc_worse_slice``, and
    ``expected``, a sentence saying what an evaluation by locale should flag.
``session_labels``
    Written by :func:`write` (``with_session_labels=True``, the default; :func:`truth` gives it
    with ``sessions=True``): every session once, as columns of equal length: ``tenant_id``,
    ``session_id``, ``day`` (the day it starts), ``thumbs_down`` and ``handoff``, the true
    probability of each label under the synthetic world given every draw but the label's own
    (the labels as ``ws.models.dataset`` defines them: a feedback -1 or a rating <= 2 stamped at
    or after the session's last turn; a handoff), and ``definition`` saying so. Labels are
    independent Bernoulli draws of these probabilities, so their ROC-AUC is the Bayes-optimal
    one a model could reach. ``thumbs_down_next`` is not recorded. On one compact line at the
    end of the file, about 100 bytes per session.
"""

from assay.synth._clinc import load_clinc150
from assay.synth._generate import INPUT_SCHEMA, generate, rag_qrels, truth
from assay.synth._rollout import SCENARIOS, RolloutStep, Scenario, rollout_steps, step_events
from assay.synth._world import SynthConfig
from assay.synth._write import SynthOutput, write

__all__ = [
    "INPUT_SCHEMA",
    "SCENARIOS",
    "RolloutStep",
    "Scenario",
    "SynthConfig",
    "SynthOutput",
    "generate",
    "load_clinc150",
    "rag_qrels",
    "rollout_steps",
    "step_events",
    "truth",
    "write",
]
