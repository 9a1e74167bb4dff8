int bar(void);
