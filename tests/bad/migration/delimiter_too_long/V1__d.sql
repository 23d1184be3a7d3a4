DELIMITER ################
SELECT 1;
