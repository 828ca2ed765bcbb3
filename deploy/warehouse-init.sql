-- amendctl's PostgreSQL, first start (docker-compose.yml runs it through deploy/warehouse-init.sh,
-- which passes the login's password from a secret as the psql variable amendctl_password):
-- the reference policy's warehouse target (its role-map roles and a least-privilege login for the
-- connector) and the amendctl database (operation store, audit log, shares, rate buckets), which
-- the same login owns. The same objects as scripts/local-postgres.sh.
-- PostgreSQL 15: CREATEROLE may grant the app_ roles; on 16 and later the login needs them WITH ADMIN OPTION.
CREATE DATABASE warehouse;
CREATE ROLE amendctl LOGIN CREATEROLE PASSWORD :'amendctl_password';
CREATE ROLE app_admin NOLOGIN;
CREATE ROLE app_write NOLOGIN;
CREATE ROLE app_read NOLOGIN;
GRANT CONNECT ON DATABASE warehouse TO amendctl;
CREATE DATABASE amendctl_audit OWNER amendctl;
