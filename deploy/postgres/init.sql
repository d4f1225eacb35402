-- One database per service: each service owns its data (ARCHITECTURE.md, rule 2).
CREATE DATABASE users;
CREATE DATABASE orders;
CREATE DATABASE payments;
CREATE DATABASE delivery;
CREATE DATABASE catalog;
