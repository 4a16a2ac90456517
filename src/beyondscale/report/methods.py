"""What each number means and how it was measured (HTML and Markdown share it)."""

from __future__ import annotations

METHOD_NOTES: tuple[tuple[str, str], ...] = (
    ("acc", "Multiple choice: the item counts as correct when the gold choice has the highest summed "
            "log-likelihood of its continuation given the prompt (lm-evaluation-harness definition)."),
    ("acc_norm", "As acc, but each choice's log-likelihood is divided by the length of its continuation in "
                 "characters before the argmax (lm-evaluation-harness), removing the bias toward short "
                 "answers. acc_bytes divides by the UTF-8 byte length instead."),
    ("exact_match", "Generation: the greedy answer, after the task's filters, equals the gold string."),
    ("± stderr", "Means (acc, acc_norm, acc_bytes, exact_match, brier_score) carry the closed-form standard "
                 "error of the mean over items; corpus-level metrics (ECE, perplexities, bits-per-byte) a "
                 "bootstrap standard error over items (seeded, reproducible)."),
    ("bits-per-byte", "Rolling log-likelihood of whole documents: bits_per_byte = −Σ log p / (ln 2 × UTF-8 "
                      "bytes). It does not depend on the tokenizer, so models with different vocabularies "
                      "compare fairly. byte_perplexity = 2^bits_per_byte; word_perplexity = exp(−Σ log p / "
                      "words)."),
    ("ECE", "Expected calibration error, HELM's ece_10_bin: items are sorted by confidence (the probability "
            "of the predicted choice, softmax over the choices' log-likelihoods) and cut into 10 equal-mass "
            "bins (equal numbers of items); ECE = Σ over bins of (n_bin / n) × |mean confidence − accuracy|. "
            "The reliability diagrams plot exactly these bins; the dashed diagonal is perfect calibration. "
            "Brier score = Σ over choices of (probability − one-hot gold)², averaged over items."),
    ("Paired tests", "Two models are compared on the items both scored, item by item, under the newest version of "
                     "the task both have (a task's version changes with its data, few-shot, limit or length "
                     "settings). 0/1 metrics use McNemar's exact test: a two-sided binomial test (p = ½) on the "
                     "discordant items, those exactly one of the two got right. Continuous metrics use a paired "
                     "sign-flip permutation test: every pattern of swapping the two models' values on each item "
                     "(exact up to 20 items, 10,000 Monte Carlo patterns above; bits per byte recomputed as a ratio "
                     "of sums under each). No p prints below the smallest the test can give with n items (2/2ⁿ "
                     "exact, 1/(K+1) Monte Carlo), and under 6 items nothing is tested. The effect's 95% CI is a "
                     "paired bootstrap percentile interval. Over the tasks of one comparison, p-values are Holm-adjusted (family-wise error 5%), "
                     "and a row is significant only when its adjusted p is below 0.05; it counts only for the model "
                     "it favours. Models are ordered by size, then by content key (never by name); models within "
                     "5% of each other's size are 'the same size', never 'smaller' or 'bigger'. 'bigger but not "
                     "significantly better' flags pairs where b is really larger but not significantly better."),
    ("Recommendation", "The first rule that applies, named in the reason: constraints (the smallest model meeting "
                       "them); a primary task (the smallest model no other is significantly better than on it); "
                       "otherwise the smallest model no other is significantly better than on any task. When each "
                       "model is significantly worse somewhere, no model dominates and none is recommended without "
                       "a rule. The reason always names where a smaller or same-size model is significantly "
                       "better than the pick."),
    ("Returns curves and fits", "x is a size axis (parameters, active parameters, FLOPs per token, training "
                                "tokens) on a log₂ scale. Fitted forms: score s(x) = s∞ − A·x^−α; loss "
                                "L(x) = E + A·x^−α; two-variable L(N, D) = E + A·N^−α + B·D^−β (Chinchilla). "
                                "Each law is fitted in its metric's own space (perplexity as ln perplexity; an "
                                "accuracy's asymptote at most 1, its floor at chance when the choices are known) "
                                "by least squares: for each exponent on a fine grid the rest is linear, solved in "
                                "closed form, then refined (variable projection; no start values, no random "
                                "restarts). The shaded band and the parameter intervals are profile-t 95% "
                                "intervals (Bates & Watts 1988): a value is inside when the fit constrained to it "
                                "raises the residual sum of squares by at most the t quantile with n − p degrees "
                                "of freedom allows; coverage on planted laws is in bench/fit_coverage.md. With as "
                                "many sizes as parameters there is no interval, and the report says so. A law is "
                                "fitted only across models that differ in size alone; others are points beside "
                                "it. Fits over 5+ sizes are backtested: refitted without the largest model, "
                                "they predict it."),
    ("Marginal gain", "Gain in the metric between consecutive sizes divided by the number of doublings "
                      "between them (log₂ of the size ratio): what one more doubling bought."),
    ("Knee", "The size after which a doubling buys less than a threshold (or, by the Kneedle method, the "
             "point of maximum curvature of the returns curve). A knee needs a curve: at least 3 distinct sizes, "
             "since a change of slope needs two slopes. When the models beyond a knee score lower, the verdict "
             "says so rather than calling it a flattening."),
    ("Pareto frontier", "A model is on the frontier when no other model is at least as good in quality and "
                        "at least as cheap on that cost axis, and strictly better in one. Dominated models are "
                        "grey."),
    ("Throughput and batch time", "Wall-clock tokens per second and milliseconds per item (ms/item, batch "
                                  "time: the batched run's wall time divided by its items, not a per-request "
                                  "latency) over the whole scoring run on this machine; peak memory is the peak resident set (CPU) or peak "
                               "allocated memory (GPU)."),
    ("Energy", "Measured from hardware counters where available (source 'rapl' for Intel/AMD CPU package "
               "energy, 'nvml' for NVIDIA GPU energy). Otherwise estimated ('estimate:tdp'): CPU-seconds × "
               "TDP per logical CPU + 0.375 W per GB of peak RAM × wall time (CodeCarbon's model) and, when a "
               "GPU is used without NVML, its board power × wall time. Estimates carry an est. badge. An estimate "
               "computed from CPU time is the time measurement again: the verdict reports it once, as time."),
    ("Carbon", "gCO2e = kWh × PUE × grid intensity (gCO2e per kWh of the configured region), per 1,000 "
               "tokens. It inherits the energy figure's source: estimated energy gives estimated carbon."),
    ("Cost", "$ per 1M tokens = hourly price of the hardware × hours of the run / tokens × 10⁶; $ per "
             "correct answer divides the run's cost by the number of correctly answered items."),
    ("MFU", "Model FLOPs utilisation = achieved FLOP/s (FLOPs per token × tokens per second) / peak FLOP/s "
            "of the device (datasheet or a probed matmul rate), shown as a percentage."),
    ("FLOPs per token", "Forward-pass FLOPs per token, about 2 × active non-embedding parameters plus the "
                        "attention term; for Mixture-of-Experts models only the experts routed to count."),
)

