#ifndef POSTCLASSD_CRDKAFKA_SHIM_H
#define POSTCLASSD_CRDKAFKA_SHIM_H
// librdkafka's client API and its in-process mock cluster (the embedded broker).
// rdkafka_mock.h must follow rdkafka.h.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#endif
