SELECT 1 INTO OUTFILE '/tmp/tend-bad-marker';
