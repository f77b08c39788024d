-- One database per service (DESIGN.md): NRM_DATABASE_URL=.../nrm_{service}
CREATE DATABASE nrm_identity OWNER nrm;
CREATE DATABASE nrm_intake OWNER nrm;
CREATE DATABASE nrm_router OWNER nrm;
CREATE DATABASE nrm_notify OWNER nrm;
CREATE DATABASE nrm_audit OWNER nrm;
CREATE DATABASE nrm_insights OWNER nrm;
