DROP TABLE IF EXISTS changefeed_inbox;
