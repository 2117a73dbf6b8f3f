-- V2 (DESIGN §4–§5): honest NULLs, RFM scores, segment transitions, richer run records.
--
-- A value that cannot be known is NULL, never a stand-in: no dated purchase
-- leaves recency, days since first purchase and frequency NULL; no valid
-- amount leaves the amount averages NULL; a segment average over no known
-- value is NULL. Keys are unchanged, so `load` (which re-creates the report
-- tables with CREATE TABLE … (LIKE …)) needs no change for these.

ALTER TABLE segment_metrics
    ALTER COLUMN avg_age DROP NOT NULL,
    ALTER COLUMN avg_income DROP NOT NULL,
    ALTER COLUMN avg_days_since_last_purchase DROP NOT NULL,
    ALTER COLUMN avg_purchase_frequency DROP NOT NULL;

-- r/f/m scores: quintiles over buyers, 1–5, 5 = best; NULL for non-buyers.
ALTER TABLE customer_segments
    ALTER COLUMN avg_purchase_amount DROP NOT NULL,
    ALTER COLUMN days_since_last_purchase DROP NOT NULL,
    ALTER COLUMN purchase_frequency DROP NOT NULL,
    ADD COLUMN r_score INTEGER CHECK (r_score BETWEEN 1 AND 5),
    ADD COLUMN f_score INTEGER CHECK (f_score BETWEEN 1 AND 5),
    ADD COLUMN m_score INTEGER CHECK (m_score BETWEEN 1 AND 5);

ALTER TABLE customer_behavior_metrics
    ALTER COLUMN avg_transaction_value DROP NOT NULL,
    ALTER COLUMN max_purchase_amount DROP NOT NULL,
    ALTER COLUMN min_purchase_amount DROP NOT NULL,
    ALTER COLUMN days_since_first_purchase DROP NOT NULL,
    ALTER COLUMN days_since_last_purchase DROP NOT NULL;

-- How customers moved between the previous model's segments and this run's
-- (written when a previous model is given). History, like pipeline_runs:
-- appended per run, never replaced.
CREATE TABLE segment_transitions (
    run_id       TEXT    NOT NULL,
    from_segment INTEGER NOT NULL,
    to_segment   INTEGER NOT NULL,
    customers    BIGINT  NOT NULL CHECK (customers >= 0),
    CONSTRAINT segment_transitions_pkey PRIMARY KEY (run_id, from_segment, to_segment)
);

-- The segmentation method, the whole k sweep, the holdout scores and where
-- the data came from, for every load.
ALTER TABLE pipeline_runs
    ADD COLUMN method   TEXT,
    ADD COLUMN source   TEXT,
    ADD COLUMN k_sweep  JSONB,
    ADD COLUMN holdout  JSONB;
