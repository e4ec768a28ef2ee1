--
-- PostgreSQL database dump
--

\restrict uxVtCnwXgZFdsdhS4fOfaR7BvGJYWzntJPxwPACIxFpHtouD3HtTGPjrZpRc8gf

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: s2; Type: SCHEMA; Schema: -; Owner: postgres
--

CREATE SCHEMA s2;


ALTER SCHEMA s2 OWNER TO postgres;

--
-- Name: mood; Type: TYPE; Schema: public; Owner: postgres
--

CREATE TYPE public.mood AS ENUM (
    'a',
    'b'
);


ALTER TYPE public.mood OWNER TO postgres;

--
-- Name: f1(integer); Type: FUNCTION; Schema: public; Owner: postgres
--

CREATE FUNCTION public.f1(x integer) RETURNS integer
    LANGUAGE plpgsql
    AS $$ begin return x + 1; end; $$;


ALTER FUNCTION public.f1(x integer) OWNER TO postgres;

--
-- Name: seq1; Type: SEQUENCE; Schema: public; Owner: postgres
--

CREATE SEQUENCE public.seq1
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


ALTER TABLE public.seq1 OWNER TO postgres;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: t1; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.t1 (
    id integer NOT NULL,
    name text DEFAULT 'x'::text,
    price numeric(10,2),
    created timestamp with time zone DEFAULT now()
);


ALTER TABLE public.t1 OWNER TO postgres;

--
-- Name: TABLE t1; Type: COMMENT; Schema: public; Owner: postgres
--

COMMENT ON TABLE public.t1 IS 'the ''t1'' table';


--
-- Name: v1; Type: VIEW; Schema: public; Owner: postgres
--

CREATE VIEW public.v1 AS
 SELECT t1.id,
    t1.name
   FROM public.t1
  WHERE (t1.price > (0)::numeric);


ALTER TABLE public.v1 OWNER TO postgres;

--
-- Name: t2; Type: TABLE; Schema: s2; Owner: postgres
--

CREATE TABLE s2.t2 (
    a bigint,
    b jsonb
);


ALTER TABLE s2.t2 OWNER TO postgres;

--
-- Data for Name: t1; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY public.t1 (id, name, price, created) FROM stdin;
1	a	1.50	2024-01-01 23:09:39.468678+00
2	tab\tx	\N	2024-01-01 23:09:39.468678+00
\.


--
-- Data for Name: t2; Type: TABLE DATA; Schema: s2; Owner: postgres
--

COPY s2.t2 (a, b) FROM stdin;
\.


--
-- Name: seq1; Type: SEQUENCE SET; Schema: public; Owner: postgres
--

SELECT pg_catalog.setval('public.seq1', 1, false);


--
-- Name: t1 t1_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.t1
    ADD CONSTRAINT t1_pkey PRIMARY KEY (id);


--
-- Name: t1_name; Type: INDEX; Schema: public; Owner: postgres
--

CREATE INDEX t1_name ON public.t1 USING btree (name);


--
-- Name: t2 t2_a_fkey; Type: FK CONSTRAINT; Schema: s2; Owner: postgres
--

ALTER TABLE ONLY s2.t2
    ADD CONSTRAINT t2_a_fkey FOREIGN KEY (a) REFERENCES public.t1(id);


--
-- PostgreSQL database dump complete
--

\unrestrict uxVtCnwXgZFdsdhS4fOfaR7BvGJYWzntJPxwPACIxFpHtouD3HtTGPjrZpRc8gf

