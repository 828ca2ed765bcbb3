-- The reference policy's warehouse: role-map roles and a least-privilege login for the connector.
CREATE DATABASE warehouse;
CREATE ROLE amendctl LOGIN CREATEROLE PASSWORD 'change-me';
CREATE ROLE app_admin NOLOGIN;
CREATE ROLE app_write NOLOGIN;
CREATE ROLE app_read NOLOGIN;
GRANT CONNECT ON DATABASE warehouse TO amendctl;
