# How tests/data/limma/*.csv were made: limma's own moderated t, for tests/test_moderated.py.
#
# Run from the repository root (R with limma; Debian: r-base-core, r-bioc-limma):
#
#     Rscript tests/data/make_limma_reference.R
#
# The inputs come from a deterministic formula (a sine hash, no random number generator), are
# rounded to 10 significant digits and written to <case>.values.csv, one row per example and one
# column per run (A_<seed>, B_<seed>), "NA" for a missing score; the tests read the inputs from
# those files, so R is not needed to run them. limma's results go to reference.csv (one row per
# example tested by limma, per case) and squeeze.csv (limma::squeezeVar on given variances).
# Numbers are written with 17 significant digits, so they round-trip exactly.
#
# options.csv holds eBayes(trend=TRUE), eBayes(robust=TRUE) (which needs statmod; Debian:
# r-cran-statmod) and both, on some of the cases above and on new ones, and lmFit with run
# covariates (model.matrix(~group + cov), and + a two-level batch factor, with missing scores),
# whose covariates are in <case>.covariates.csv (one row per run); for tests/test_covariates.py.

suppressPackageStartupMessages(library(limma))

out_dir <- file.path("tests", "data", "limma")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

# A deterministic stand-in for uniform draws in (0, 1): the fractional part of a scaled sine.
hash_uniform <- function(k) {
  u <- sin(k) * 43758.5453123
  u <- u - floor(u)
  1e-9 + (1 - 2e-9) * u
}
# ... and for standard normal draws, indexed by run i, example j and a stream number.
hash_normal <- function(i, j, stream) qnorm(hash_uniform(i * 12.9898 + j * 78.233 + stream * 37.719))

# A (runs x examples) matrix of hashed normal draws.
noise <- function(n_runs, n_examples, stream) {
  outer(seq_len(n_runs), seq_len(n_examples), function(i, j) hash_normal(i, j, stream))
}

fmt <- function(x) ifelse(is.na(x), "NA", ifelse(is.infinite(x), ifelse(x > 0, "Inf", "-Inf"), sprintf("%.17g", x)))

# Examples (rows) x runs (columns) as limma wants them, named A_0.., B_0...
write_values <- function(case, a, b) {
  values <- signif(cbind(t(a), t(b)), 10)
  colnames(values) <- c(paste0("A_", seq_len(nrow(a)) - 1L), paste0("B_", seq_len(nrow(b)) - 1L))
  text <- apply(values, 2, function(column) ifelse(is.na(column), "NA", sprintf("%.10g", column)))
  table <- cbind(example = seq_len(nrow(values)) - 1L, text)
  write.csv(table, file.path(out_dir, paste0(case, ".values.csv")), row.names = FALSE, quote = FALSE)
  inputs[[case]] <<- values
  values
}
inputs <- list()

# limma's results for the examples `keep` (0-based example ids), as a data frame.
reference_rows <- function(case, fit, keep) {
  t <- fit$t[, "groupB"]
  df_total <- fit$df.total
  # -log10 p from R's log-space t tail: p itself underflows to 0 for the strongest examples.
  neg_log10_p <- -(pt(-abs(t), df = df_total, log.p = TRUE) + log(2)) / log(10)
  data.frame(
    case = case, example = keep, t = fmt(t), df_total = fmt(df_total), df_prior = fmt(rep_len(fit$df.prior, length(t))),
    s2_prior = fmt(rep_len(fit$s2.prior, length(t))), s2_post = fmt(fit$s2.post), p_value = fmt(fit$p.value[, "groupB"]),
    neg_log10_p = fmt(neg_log10_p), stringsAsFactors = FALSE
  )
}

# Two independent groups: lmFit on ~group (residual variance = pooled variance, d = n_a + n_b - 2).
two_group_case <- function(case, a, b, keep = seq_len(ncol(a)) - 1L) {
  values <- write_values(case, a, b)
  group <- factor(c(rep("A", nrow(a)), rep("B", nrow(b))))
  fit <- eBayes(lmFit(values[keep + 1L, , drop = FALSE], model.matrix(~group)))
  reference_rows(case, fit, keep)
}

# Paired runs (row i of A and of B share a seed): lmFit on ~pair + group. Its residual variance is
# half the variance of the differences B - A; t, the degrees of freedom and p are those of the
# one-sample moderated t of the differences, which is checked here.
paired_case <- function(case, a, b) {
  values <- write_values(case, a, b)
  n <- nrow(a)
  pair <- factor(c(seq_len(n), seq_len(n)))
  group <- factor(c(rep("A", n), rep("B", n)))
  fit <- eBayes(lmFit(values, model.matrix(~pair + group)))
  differences <- values[, n + seq_len(n)] - values[, seq_len(n)]
  one_sample <- eBayes(lmFit(differences, matrix(1, n, 1)))
  stopifnot(isTRUE(all.equal(as.vector(one_sample$t), as.vector(fit$t[, "groupB"]), tolerance = 1e-12)))
  stopifnot(isTRUE(all.equal(one_sample$s2.prior, 2 * fit$s2.prior, tolerance = 1e-12)))
  reference_rows(case, fit, seq_len(nrow(values)) - 1L)
}

# Per-example sd that varies smoothly (log-normally) across examples.
lognormal_sd <- function(n_examples, spread, stream) exp(spread * hash_normal(0, seq_len(n_examples), stream))

rows <- list()

# 1. 8 vs 8 runs, 300 examples, log-normal variances, 20 planted effects.
n <- 300
sd <- lognormal_sd(n, 0.6, 1)
mu <- hash_normal(0, seq_len(n), 2)
effect <- ifelse(seq_len(n) <= 20, 1.5 * sd, 0)
a <- sweep(sweep(noise(8, n, 3), 2, sd, "*"), 2, mu, "+")
b <- sweep(sweep(noise(8, n, 4), 2, sd, "*"), 2, mu + effect, "+")
rows[["eight_vs_eight"]] <- two_group_case("eight_vs_eight", a, b)

# 2. Tiny samples, 3 vs 3 runs, 200 examples.
n <- 200
sd <- lognormal_sd(n, 0.4, 5)
a <- sweep(noise(3, n, 6), 2, sd, "*")
b <- sweep(noise(3, n, 7), 2, sd, "*") + outer(rep(1, 3), ifelse(seq_len(n) <= 10, 3 * sd, 0))
rows[["three_vs_three"]] <- two_group_case("three_vs_three", a, b)

# 3. 20 vs 20 runs, 150 examples, mildly varying variances (a larger d0), effects up to t ~ 20,000:
#    p far below 1e-300 with a finite, non-integer df.
n <- 150
sd <- lognormal_sd(n, 0.1, 8)
effect <- ifelse(seq_len(n) <= 5, c(20000, 5000, 500, 60, 20)[pmin(seq_len(n), 5)] * sd * sqrt(2 / 20), 0)
a <- sweep(noise(20, n, 9), 2, sd, "*")
b <- sweep(sweep(noise(20, n, 10), 2, sd, "*"), 2, effect, "+")
rows[["twenty_vs_twenty"]] <- two_group_case("twenty_vs_twenty", a, b)

# 4. Every example has the same pooled variance (each column is the same within-group deviations,
#    shifted): the log-variances spread less than chance allows, so d0 = Inf; strong effects give
#    p below 1e-300 at df = sum of the residual df.
n <- 300
base_a <- as.vector(noise(8, 1, 11))
base_b <- as.vector(noise(8, 1, 12))
shift <- hash_normal(0, seq_len(n), 13)
delta <- ifelse(seq_len(n) <= 10, seq(5, 50, length.out = 10)[pmin(seq_len(n), 10)] * 0.5, 0)
a <- outer(base_a, rep(1, n)) + outer(rep(1, 8), shift)
b <- outer(base_b, rep(1, n)) + outer(rep(1, 8), shift + delta)
rows[["equal_variances"]] <- two_group_case("equal_variances", a, b)

# 5. 8 vs 8 with constant examples: 0-4 constant and equal in both groups, 5-9 constant at another
#    value in B, 10-14 constant in A only (these are tested). limma sees examples 10-299 only.
n <- 300
sd <- lognormal_sd(n, 0.5, 14)
a <- sweep(noise(8, n, 15), 2, sd, "*")
b <- sweep(noise(8, n, 16), 2, sd, "*") + outer(rep(1, 8), ifelse(seq_len(n) <= 30, 2 * sd, 0))
a[, 1:15] <- 0.25
b[, 1:5] <- 0.25
b[, 6:10] <- 1.25
rows[["constant_removed"]] <- two_group_case("constant_removed", a, b, keep = 10:(n - 1L))

# 6. 8 vs 8 with missing scores: about a fifth of runs 2-7 of each group missing per example
#    (runs 0 and 1 always there), so each example has its own residual df.
n <- 300
sd <- lognormal_sd(n, 0.6, 17)
a <- sweep(noise(8, n, 18), 2, sd, "*")
b <- sweep(noise(8, n, 19), 2, sd, "*") + outer(rep(1, 8), ifelse(seq_len(n) <= 20, 2 * sd, 0))
missing_a <- outer(seq_len(8), seq_len(n), function(i, j) i > 2 & hash_uniform(i * 3.1 + j * 7.7 + 101) < 0.2)
missing_b <- outer(seq_len(8), seq_len(n), function(i, j) i > 2 & hash_uniform(i * 5.3 + j * 2.9 + 211) < 0.2)
a[missing_a] <- NA
b[missing_b] <- NA
rows[["missing_runs"]] <- two_group_case("missing_runs", a, b)

# 7. Paired: 6 seeds, 250 examples, a per-seed component shared by A and B.
n <- 250
sd <- lognormal_sd(n, 0.5, 20)
seed_part <- sweep(noise(6, n, 21), 2, 2 * sd, "*")
a <- seed_part + sweep(noise(6, n, 22), 2, sd, "*")
b <- seed_part + sweep(noise(6, n, 23), 2, sd, "*") + outer(rep(1, 6), ifelse(seq_len(n) <= 15, 2 * sd, 0))
rows[["paired"]] <- paired_case("paired", a, b)

write.csv(do.call(rbind, rows), file.path(out_dir, "reference.csv"), row.names = FALSE, quote = FALSE)

# squeezeVar on given variances and residual df (several df values): some zero variances and
# some below 1e-5 of the median, which limma offsets; and more than half zero (limma then offsets
# from 1e-5, warning that eBayes is unreliable).
squeeze_case <- function(case, var, df) {
  var <- signif(var, 10)
  fit <- suppressWarnings(squeezeVar(var, df))
  data.frame(case = case, var = fmt(var), df = fmt(df), var_post = fmt(fit$var.post),
             df_prior = fmt(rep_len(fit$df.prior, length(var))), var_prior = fmt(rep_len(fit$var.prior, length(var))))
}
m <- 60
var <- exp(0.8 * hash_normal(0, seq_len(m), 24))
df <- c(4, 6, 14)[1 + (seq_len(m) %% 3)]
var[c(3, 17, 40)] <- 0
var[c(8, 25)] <- c(1e-9, 3e-7)
mostly_zero <- var
mostly_zero[1:40] <- 0
squeeze <- rbind(squeeze_case("some_zero", var, df), squeeze_case("mostly_zero", mostly_zero, df))
write.csv(squeeze, file.path(out_dir, "squeeze.csv"), row.names = FALSE, quote = FALSE)

# ---- eBayes's trend and robust options, and run covariates (options.csv) -------------------

# The rows of one fit: the ordinary fit of the groupB coefficient (lmFit), then eBayes's.
options_rows <- function(case, values_name, fit, keep, trend, robust, covariates) {
  coefficient <- fit$coefficients[, "groupB"]
  stdev_unscaled <- fit$stdev.unscaled[, "groupB"]
  t_ordinary <- coefficient / stdev_unscaled / fit$sigma
  eb <- eBayes(fit, trend = trend, robust = robust)
  t <- eb$t[, "groupB"]
  neg_log10_p <- -(pt(-abs(t), df = eb$df.total, log.p = TRUE) + log(2)) / log(10)
  n <- length(t)
  data.frame(
    case = case, values = values_name, trend = trend, robust = robust, covariates = covariates, example = keep,
    coefficient = fmt(coefficient), stdev_unscaled = fmt(stdev_unscaled), sigma = fmt(fit$sigma),
    df_residual = fmt(fit$df.residual), t_ordinary = fmt(t_ordinary),
    p_ordinary = fmt(2 * pt(-abs(t_ordinary), df = fit$df.residual)),
    t = fmt(t), df_total = fmt(eb$df.total), df_prior = fmt(rep_len(eb$df.prior, n)),
    s2_prior = fmt(rep_len(eb$s2.prior, n)), s2_post = fmt(eb$s2.post), p_value = fmt(eb$p.value[, "groupB"]),
    neg_log10_p = fmt(neg_log10_p), stringsAsFactors = FALSE
  )
}

# Examples that are not constant within both groups (those the Python side tests).
not_constant <- function(values, n_a) {
  constant <- function(m) apply(m, 1, function(r) { r <- r[is.finite(r)]; length(r) > 0 && all(r == r[1]) })
  which(!(constant(values[, seq_len(n_a), drop = FALSE]) & constant(values[, -seq_len(n_a), drop = FALSE]))) - 1L
}

# eBayes options on the ~group design of a stored input.
group_options <- function(values_name, n_a, settings) {
  values <- inputs[[values_name]]
  keep <- not_constant(values, n_a)
  group <- factor(c(rep("A", n_a), rep("B", ncol(values) - n_a)))
  fit <- lmFit(values[keep + 1L, , drop = FALSE], model.matrix(~group))
  do.call(rbind, lapply(settings, function(s) {
    options_rows(paste0(values_name, "_", s), values_name, fit, keep, grepl("trend", s), grepl("robust", s), "none")
  }))
}

# Run covariates: written one row per run (run = the values' column name), then lmFit on the
# design of `formula` over group and the covariates.
covariate_options <- function(values_name, n_a, covariates, formula, settings) {
  values <- inputs[[values_name]]
  runs <- data.frame(run = colnames(values), covariates, stringsAsFactors = FALSE)
  text <- runs
  for (column in names(covariates)) if (is.numeric(text[[column]])) text[[column]] <- sprintf("%.10g", text[[column]])
  write.csv(text, file.path(out_dir, paste0(values_name, ".covariates.csv")), row.names = FALSE, quote = FALSE)
  keep <- not_constant(values, n_a)
  frame <- data.frame(group = factor(c(rep("A", n_a), rep("B", ncol(values) - n_a))), covariates)
  design <- model.matrix(formula, frame)
  fit <- suppressWarnings(lmFit(values[keep + 1L, , drop = FALSE], design))
  do.call(rbind, lapply(settings, function(s) {
    options_rows(paste0(values_name, "_", s), values_name, fit, keep, grepl("trend", s), grepl("robust", s),
                 paste(names(covariates), collapse = "+"))
  }))
}

option_rows <- list()
option_rows[["eight_vs_eight"]] <- group_options("eight_vs_eight", 8, c("trend", "robust", "trend_robust"))
# Every variance alike: robust's winsorised spread is below chance, so d0 = Inf with outliers aside.
option_rows[["equal_variances"]] <- group_options("equal_variances", 8, c("robust"))
# Per-example residual df: robust maps the variances with fewer df to the largest df first.
option_rows[["missing_runs"]] <- group_options("missing_runs", 8, c("robust", "trend_robust"))

# 8. Count-like scores: log2(count + 0.5) of Poisson counts (hashed), 4 vs 4 runs, 400 examples
#    whose means span 2 to 2,000 counts, so the variance of the log falls with the mean; 30 effects.
n <- 400
level <- exp(log(2) + (log(2000) - log(2)) * hash_uniform(seq_len(n) * 3.3 + 7))
fold <- ifelse(seq_len(n) <= 30, 2.5, 1)
counts <- function(n_runs, stream, multiplier) {
  outer(seq_len(n_runs), seq_len(n), function(i, j) qpois(hash_uniform(i * 12.9898 + j * 78.233 + stream * 37.719), level[j] * multiplier[j]))
}
a <- log2(counts(4, 30, rep(1, n)) + 0.5)
b <- log2(counts(4, 31, fold) + 0.5)
invisible(write_values("counts", a, b))
option_rows[["counts"]] <- group_options("counts", 4, c("none", "trend", "robust", "trend_robust"))

# 9. Continuous scores whose sd falls with their mean, 6 vs 6 runs, 500 examples, 12 of them
#    hypervariable (sd x 6: outliers for robust=TRUE), 25 effects.
n <- 500
mu <- 2 + 10 * hash_uniform(seq_len(n) * 1.7 + 3)
sd <- (0.2 + 2 * exp(-mu / 3)) * exp(0.3 * hash_normal(0, seq_len(n), 32))
sd[seq(7, n, length.out = 12)] <- 6 * sd[seq(7, n, length.out = 12)]
effect <- ifelse(seq_len(n) <= 25, 2 * sd, 0)
a <- sweep(sweep(noise(6, n, 33), 2, sd, "*"), 2, mu, "+")
b <- sweep(sweep(noise(6, n, 34), 2, sd, "*"), 2, mu + effect, "+")
invisible(write_values("hypervariable", a, b))
option_rows[["hypervariable"]] <- group_options("hypervariable", 6, c("trend", "robust", "trend_robust"))

# 10. A run covariate (a test accuracy per run) that shifts every example, 6 vs 6 runs, 300
#     examples (slopes vary by example), 20 effects: ~group + accuracy.
n <- 300
accuracy <- 0.9 + 0.02 * hash_normal(seq_len(12), 0, 35)
slope <- 40 * (1 + 0.5 * hash_normal(0, seq_len(n), 36))
sd <- lognormal_sd(n, 0.5, 37)
values <- sweep(noise(12, n, 38), 2, sd, "*") + outer(accuracy - 0.9, slope)
values[7:12, ] <- sweep(values[7:12, ], 2, ifelse(seq_len(n) <= 20, 2 * sd, 0), "+")
invisible(write_values("covariate", values[1:6, ], values[7:12, ]))
option_rows[["covariate"]] <- covariate_options(
  "covariate", 6, data.frame(accuracy = signif(accuracy, 10)), ~group + accuracy, c("none", "trend", "robust")
)

# 11. The accuracy and a two-level batch (b1, b2, across both groups), with missing scores (runs
#     2-5 of each group missing with probability 0.12 per example): lmFit fits each example on its
#     finite runs, with its own residual df.
n <- 300
batch <- c("b1", "b2", "b1", "b2", "b2", "b1", "b2", "b1", "b1", "b2", "b1", "b2")
batch_shift <- 1.5 * hash_normal(0, seq_len(n), 39)
values <- sweep(noise(12, n, 40), 2, sd, "*") + outer(accuracy - 0.9, slope) + outer(batch == "b2", batch_shift)
values[7:12, ] <- sweep(values[7:12, ], 2, ifelse(seq_len(n) <= 20, 2 * sd, 0), "+")
missing <- outer(seq_len(12), seq_len(n), function(i, j) ((i - 1) %% 6) >= 2 & hash_uniform(i * 4.7 + j * 3.3 + 307) < 0.12)
values[missing] <- NA
invisible(write_values("covariate_batch", values[1:6, ], values[7:12, ]))
option_rows[["covariate_batch"]] <- covariate_options(
  "covariate_batch", 6, data.frame(accuracy = signif(accuracy, 10), batch = batch, stringsAsFactors = FALSE),
  ~group + accuracy + batch, c("none", "trend_robust")
)

write.csv(do.call(rbind, option_rows), file.path(out_dir, "options.csv"), row.names = FALSE, quote = FALSE)

# limma's loessFit (stats::lowess, 3 robustness iterations) as robust=TRUE with a trend uses it,
# span 0.4: 250 points, x rounded to 2 decimals (ties, some gaps wider than delta), a few outliers.
x <- round(3 * hash_uniform(seq_len(250) * 2.3 + 11)^2, 2)
x[c(20, 21)] <- c(2.95, 3.4)
y <- sin(2 * x) + 0.3 * hash_normal(0, seq_len(250), 41)
y[c(5, 90, 200)] <- y[c(5, 90, 200)] + c(4, -5, 6)
lowess_fit <- loessFit(y, x, span = 0.4)
write.csv(data.frame(x = fmt(x), y = fmt(y), fitted = fmt(lowess_fit$fitted)), file.path(out_dir, "lowess.csv"),
          row.names = FALSE, quote = FALSE)

cat(sprintf("limma %s: wrote %s\n", packageVersion("limma"), out_dir))
for (case in names(rows)) {
  cat(sprintf("  %-17s %3d examples, df.prior %s, s2.prior %s\n", case, nrow(rows[[case]]), rows[[case]]$df_prior[1], rows[[case]]$s2_prior[1]))
}
