//go:build gocv

#ifdef __cplusplus
extern "C" {
#endif

void sv_set_num_threads(int n);
int sv_get_num_threads(void);

#ifdef __cplusplus
}
#endif
