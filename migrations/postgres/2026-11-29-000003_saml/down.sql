DROP TABLE saml_participants;
DROP TABLE saml_certs;
DROP TABLE service_providers;
