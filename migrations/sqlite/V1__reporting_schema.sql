-- segpipe reporting schema (DESIGN §5), SQLite.
--
-- Same tables, columns and keys as migrations/postgres, types mapped:
-- money is REAL rounded to cents (the same numbers PostgreSQL shows, so
-- readers need no ×100 convention), dates are TEXT `YYYY-MM-DD`, timestamps
-- TEXT RFC 3339 (UTC), JSON is TEXT checked with json_valid, seed is TEXT
-- (a u64 does not fit SQLite's signed 64-bit INTEGER). STRICT makes SQLite
-- reject values of the wrong type instead of silently storing them.

CREATE TABLE segment_metrics (
    segment                      INTEGER NOT NULL CHECK (segment >= 0),
    segment_label                TEXT    NOT NULL,
    num_customers                INTEGER NOT NULL CHECK (num_customers >= 0),
    total_spend                  REAL    NOT NULL,
    avg_clv                      REAL    NOT NULL,
    avg_age                      REAL    NOT NULL,
    avg_income                   REAL    NOT NULL,
    avg_purchase_count           REAL    NOT NULL,
    avg_days_since_last_purchase REAL    NOT NULL,
    avg_purchase_frequency       REAL    NOT NULL,
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
    avg_purchase_amount      REAL    NOT NULL,
    purchase_count           INTEGER NOT NULL CHECK (purchase_count >= 0),
    days_since_last_purchase INTEGER NOT NULL,
    purchase_frequency       REAL    NOT NULL,
    segment                  INTEGER NOT NULL REFERENCES segment_metrics (segment),
    segment_label            TEXT    NOT NULL,
    PRIMARY KEY (mobile)
) STRICT, WITHOUT ROWID;

CREATE TABLE customer_behavior_metrics (
    mobile                    TEXT    NOT NULL REFERENCES customer_segments (mobile),
    total_spent               REAL    NOT NULL,
    avg_transaction_value     REAL    NOT NULL,
    max_purchase_amount       REAL    NOT NULL,
    min_purchase_amount       REAL    NOT NULL,
    purchase_count            INTEGER NOT NULL CHECK (purchase_count >= 0),
    first_purchase            TEXT    CHECK (first_purchase IS date(first_purchase)),
    last_purchase             TEXT    CHECK (last_purchase IS date(last_purchase)),
    days_since_first_purchase INTEGER NOT NULL,
    days_since_last_purchase  INTEGER NOT NULL,
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

CREATE TABLE pipeline_runs (
    run_id        TEXT    NOT NULL,
    -- The transform run that made the report; loading it again appends a
    -- row with run_id `<report_run_id>-<load_number>`.
    report_run_id TEXT    NOT NULL,
    load_number   INTEGER NOT NULL CHECK (load_number >= 1),
    started_at   TEXT    NOT NULL,
    finished_at  TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('succeeded', 'failed')),
    as_of        TEXT    NOT NULL CHECK (as_of IS date(as_of)),
    seed         TEXT    NOT NULL,
    k            INTEGER NOT NULL,
    silhouette   REAL,
    inertia      REAL    NOT NULL,
    ari          REAL,
    nmi          REAL,
    row_counts   TEXT    NOT NULL CHECK (json_valid(row_counts)),
    data_quality TEXT    NOT NULL CHECK (json_valid(data_quality)),
    PRIMARY KEY (run_id),
    UNIQUE (report_run_id, load_number)
) STRICT;
