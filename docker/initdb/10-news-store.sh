#!/bin/bash
# The news store gets its own database and role beside Airflow's metadata database.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v news_password="$NEWS_DB_PASSWORD" <<'SQL'
CREATE ROLE news LOGIN PASSWORD :'news_password';
CREATE DATABASE news OWNER news;
SQL
