-- form: mariadb
-- expect: blocking
-- rules: table.sequence
CREATE SEQUENCE `order_seq` START WITH 100 INCREMENT BY 10
