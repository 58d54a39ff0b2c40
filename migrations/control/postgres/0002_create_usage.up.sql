-- control_usage is the traffic inventory: per route and per path template
-- the proxy derived, the requests each side answered by status class
-- (index 1 "no answer", 2 to 6 the classes 1xx to 5xx), the methods seen
-- as bits, and when the route was last seen and last served by legacy.
-- Every replica adds its deltas to the rows, so the counts add up across
-- replicas; a route keeps up to a thousand templates and the requests of
-- others count in its '(other)' row (see pgstore.AddUsage).
CREATE TABLE control_usage (
    module      text        NOT NULL,
    route       text        NOT NULL,
    template    text        NOT NULL,
    legacy      bigint[]    NOT NULL,
    candidate   bigint[]    NOT NULL,
    methods     integer     NOT NULL DEFAULT 0,
    last_seen   timestamptz,
    last_legacy timestamptz,
    PRIMARY KEY (module, route, template)
);
