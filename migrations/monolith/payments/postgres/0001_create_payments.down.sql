DROP TABLE IF EXISTS pay_authorizations;
DROP TABLE IF EXISTS pay_accounts;
