package gateway

import (
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"
	bootstrap "github.com/openfaas/faas-provider"
	"github.com/openfaas/faas-provider/auth"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/segflow/segflow/infra/provider"
	"github.com/segflow/segflow/infra/provider/handlers"
)

// registerAPI puts the OpenFaaS gateway API on r: the routes, methods and
// basic auth faas-provider's Serve sets up (it serves on every interface,
// which a local gateway should not), plus /async-function.
func registerAPI(r *mux.Router, rt *provider.Runtime, q *provider.AsyncQueue, creds *auth.BasicAuthCredentials, log *slog.Logger, health func() error) {
	system := func(h http.HandlerFunc) http.HandlerFunc {
		if creds == nil {
			return h
		}
		return auth.DecorateWithBasicAuth(h, creds)
	}
	name := "{name:[" + bootstrap.NameExpression + "]+}"
	r.HandleFunc("/system/functions", system(handlers.MakeListHandler(rt))).Methods(http.MethodGet)
	r.HandleFunc("/system/functions", system(handlers.MakeDeployHandler(rt, log))).Methods(http.MethodPost)
	r.HandleFunc("/system/functions", system(handlers.MakeUpdateHandler(rt, log))).Methods(http.MethodPut)
	r.HandleFunc("/system/functions", system(handlers.MakeDeleteHandler(rt, log))).Methods(http.MethodDelete)
	r.HandleFunc("/system/function/"+name, system(handlers.MakeStatusHandler(rt))).Methods(http.MethodGet)
	r.HandleFunc("/system/scale-function/"+name, system(handlers.MakeScaleHandler(rt, log))).Methods(http.MethodPost)
	r.HandleFunc("/system/info", system(handlers.MakeInfoHandler())).Methods(http.MethodGet)
	r.HandleFunc("/system/secrets", system(handlers.MakeSecretHandler(rt, log))).
		Methods(http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete)
	r.HandleFunc("/system/logs", system(handlers.MakeLogHandler(rt))).Methods(http.MethodGet)
	r.HandleFunc("/system/namespaces", system(handlers.MakeNamespacesHandler())).Methods(http.MethodGet)

	proxy := handlers.MakeProxyHandler(rt)
	r.HandleFunc("/function/"+name, proxy)
	r.HandleFunc("/function/"+name+"/", proxy)
	r.HandleFunc("/function/"+name+"/{params:.*}", proxy)
	async := handlers.MakeAsyncHandler(rt, q, log)
	r.HandleFunc("/async-function/"+name, async).Methods(http.MethodPost)
	r.HandleFunc("/async-function/"+name+"/{params:.*}", async).Methods(http.MethodPost)

	r.HandleFunc("/healthz", handlers.MakeHealthHandler(health)).Methods(http.MethodGet)
	r.Handle("/metrics", promhttp.Handler())
}
