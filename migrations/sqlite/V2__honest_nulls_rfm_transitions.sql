-- V2 (DESIGN §4–§5), SQLite: honest NULLs, RFM scores, segment transitions,
-- richer run records. See migrations/postgres/V2 for the why.
--
-- SQLite cannot drop a NOT NULL constraint in place, so the five report
-- tables are re-created. They hold only what the last load wrote, and a
-- migration runs inside the load's transaction, which fills them again
-- before it commits: nothing a reader can see is lost.

DROP TABLE customer_purchase_trends;
DROP TABLE customer_store_summary;
DROP TABLE customer_behavior_metrics;
DROP TABLE customer_segments;
DROP TABLE segment_metrics;

CREATE TABLE segment_metrics (
    segment                      INTEGER NOT NULL CHECK (segment >= 0),
    segment_label                TEXT    NOT NULL,
    num_customers                INTEGER NOT NULL CHECK (num_customers >= 0),
    total_spend                  REAL    NOT NULL,
    avg_clv                      REAL    NOT NULL,
    avg_age                      REAL,
    avg_income                   REAL,
    avg_purchase_count           REAL    NOT NULL,
    avg_days_since_last_purchase REAL,
    avg_purchase_frequency       REAL,
    share_of_customers           REAL    NOT NULL,
    share_of_spend               REAL    NOT NULL,
    PRIMARY KEY (segment)
) STRICT;

CREATE TABLE customer_segments (
    mobile                   TEXT    NOT NULL,
    name                     TEXT,
    age                      INTEGER CHECK (age >= 0),
    income                   REAL,
    gender                   TEXT    CHECK (gender IN ('male', 'female', 'other')),
    clv                      REAL    NOT NULL,
    avg_purchase_amount      REAL,
    purchase_count           INTEGER NOT NULL CHECK (purchase_count >= 0),
    days_since_last_purchase INTEGER,
    purchase_frequency       REAL,
    segment                  INTEGER NOT NULL REFERENCES segment_metrics (segment),
    segment_label            TEXT    NOT NULL,
    r_score                  INTEGER CHECK (r_score BETWEEN 1 AND 5),
    f_score                  INTEGER CHECK (f_score BETWEEN 1 AND 5),
    m_score                  INTEGER CHECK (m_score BETWEEN 1 AND 5),
    PRIMARY KEY (mobile)
) STRICT, WITHOUT ROWID;

CREATE TABLE customer_behavior_metrics (
    mobile                    TEXT    NOT NULL REFERENCES customer_segments (mobile),
    total_spent               REAL    NOT NULL,
    avg_transaction_value     REAL,
    max_purchase_amount       REAL,
    min_purchase_amount       REAL,
    purchase_count            INTEGER NOT NULL CHECK (purchase_count >= 0),
    first_purchase            TEXT    CHECK (first_purchase IS date(first_purchase)),
    last_purchase             TEXT    CHECK (last_purchase IS date(last_purchase)),
    days_since_first_purchase INTEGER,
    days_since_last_purchase  INTEGER,
    PRIMARY KEY (mobile)
) STRICT, WITHOUT ROWID;

CREATE TABLE customer_store_summary (
    mobile      TEXT    NOT NULL REFERENCES customer_segments (mobile),
    store       TEXT    NOT NULL,
    total_spent REAL    NOT NULL,
    visit_count INTEGER NOT NULL CHECK (visit_count >= 0),
    PRIMARY KEY (mobile, store)
) STRICT, WITHOUT ROWID;

CREATE TABLE customer_purchase_trends (
    mobile        TEXT    NOT NULL REFERENCES customer_segments (mobile),
    month         TEXT    NOT NULL CHECK (month GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]'
                                          AND substr(month, 6, 2) BETWEEN '01' AND '12'),
    total_spent   REAL    NOT NULL,
    num_purchases INTEGER NOT NULL CHECK (num_purchases >= 0),
    PRIMARY KEY (mobile, month)
) STRICT, WITHOUT ROWID;

CREATE TABLE segment_transitions (
    run_id       TEXT    NOT NULL,
    from_segment INTEGER NOT NULL,
    to_segment   INTEGER NOT NULL,
    customers    INTEGER NOT NULL CHECK (customers >= 0),
    PRIMARY KEY (run_id, from_segment, to_segment)
) STRICT, WITHOUT ROWID;

ALTER TABLE pipeline_runs ADD COLUMN method TEXT;
ALTER TABLE pipeline_runs ADD COLUMN source TEXT;
ALTER TABLE pipeline_runs ADD COLUMN k_sweep TEXT CHECK (k_sweep IS NULL OR json_valid(k_sweep));
ALTER TABLE pipeline_runs ADD COLUMN holdout TEXT CHECK (holdout IS NULL OR json_valid(holdout));
