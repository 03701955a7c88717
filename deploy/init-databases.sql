-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d).
-- One database for runs, params, metrics and the registry; one for users and permissions.
CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE mlflow_auth OWNER mlflow;
