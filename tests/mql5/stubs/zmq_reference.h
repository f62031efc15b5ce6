/* The libzmq declarations the EA imports, as include/zmq.h of libzmq v4.3.5 (github.com/zeromq/libzmq)
   states them, and the values of the constants it uses. The test maps each C type to the MQL5 type a
   64-bit terminal passes for it and compares with the EA's #import block (tests/test_mql5.py). */
#define ZMQ_HAUSNUMERO 156384712
#define ETERM (ZMQ_HAUSNUMERO + 53)
#define ZMQ_DEALER 5
#define ZMQ_ROUTING_ID 5
#define ZMQ_LINGER 17
#define ZMQ_RECONNECT_IVL 18
#define ZMQ_RECONNECT_IVL_MAX 21
#define ZMQ_SNDHWM 23
#define ZMQ_RCVHWM 24
#define ZMQ_RCVTIMEO 27
#define ZMQ_SNDTIMEO 28
#define ZMQ_IMMEDIATE 39
#define ZMQ_CURVE_PUBLICKEY 48
#define ZMQ_CURVE_SECRETKEY 49
#define ZMQ_CURVE_SERVERKEY 50
#define ZMQ_DONTWAIT 1
int zmq_errno (void);
void zmq_version (int *major_, int *minor_, int *patch_);
void *zmq_ctx_new (void);
int zmq_ctx_term (void *context_);
void *zmq_socket (void *, int type_);
int zmq_close (void *s_);
int
zmq_setsockopt (void *s_, int option_, const void *optval_, size_t optvallen_);
int zmq_connect (void *s_, const char *addr_);
int zmq_send (void *s_, const void *buf_, size_t len_, int flags_);
int zmq_recv (void *s_, void *buf_, size_t len_, int flags_);
int zmq_has (const char *capability_);
int zmq_curve_keypair (char *z85_public_key_, char *z85_secret_key_);
