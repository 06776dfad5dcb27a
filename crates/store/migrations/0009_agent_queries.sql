-- Questions the API asks of a host's agent that runs in its own process (a guest's console
-- log): the agent fetches the unanswered ones of its host and answers; the asking request
-- polls for the answer, then deletes the row. Rows older than a minute are dropped.
CREATE TABLE agent_queries (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    kind TEXT NOT NULL,
    instance_uuid TEXT NOT NULL,
    args TEXT NOT NULL,
    answered BIGINT NOT NULL DEFAULT 0,
    result TEXT,
    error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX agent_queries_open ON agent_queries (host, answered);
