"""LiteLLM's chat and embedding providers and parameter names, as data (no code).

Generated from the installed LiteLLM by scripts/generate_litellm_data.py: do not edit by
hand. Resolution reads them without importing LiteLLM (seconds).
"""

from __future__ import annotations

__all__ = [
    "LITELLM_CHAT_PROVIDERS",
    "LITELLM_EMBEDDING_PROVIDERS",
    "LITELLM_PARAMS",
    "LITELLM_PROVIDERS",
    "LITELLM_VERSION",
]

#: The LiteLLM release these names were generated from.
LITELLM_VERSION = "1.109.3"

#: `litellm.LITELLM_CHAT_PROVIDERS`.
LITELLM_CHAT_PROVIDERS: frozenset[str] = frozenset(
    """
    ai21 ai21_chat amazon_nova anthropic anthropic_text azure azure_ai azure_text baseten
    bedrock bytez cerebras chatgpt clarifai clf_ai_gateway cloudflare codestral cohere
    cohere_chat cometapi custom custom_openai dashscope databricks datarobot deepinfra deepseek
    docker_model_runner edenai empower featherless_ai fireworks_ai friendliai galadriel gdc
    gemini gigachat github github_copilot gradient_ai groq helicone heroku hosted_vllm
    huggingface inception lambda_ai lemonade litellm_proxy llamafile lm_studio maritalk
    meta_llama mistral modelscope moonshot morph nadir nebius nlp_cloud novita nscale nvidia_nim
    oci ollama ollama_chat oobabooga openai openai_like opencode_go openrouter ovhcloud
    perplexity petals predibase publicai qwen_ai_platform qwencloud replicate sagemaker
    sagemaker_chat sagemaker_nova sambanova scaledown tencent text-completion-codestral
    text-completion-inception text-completion-openai together_ai triton v0 vercel_ai_gateway
    vertex_ai vertex_ai_beta vllm volcengine wandb watsonx watsonx_text xai
    """.split()  # noqa: SIM905
)

#: The providers of `litellm.provider_list` that embed: those with embedding models in
#: LiteLLM's price map (`litellm.model_cost`, mode "embedding") or an embedding config.
LITELLM_EMBEDDING_PROVIDERS: frozenset[str] = frozenset(
    """
    azure azure_ai bedrock cohere cohere_chat cometapi dashscope databricks edenai fireworks_ai
    gemini gigachat github_copilot hosted_vllm hostinger_router infinity jina_ai libertai
    mistral nebius novita oci openai openrouter ovhcloud perplexity qwen_ai_platform qwencloud
    sagemaker sambanova scaleway snowflake together_ai triton vercel_ai_gateway vertex_ai
    volcengine voyage watsonx
    """.split()  # noqa: SIM905
)

#: Every LiteLLM provider a name may start with (`voyage:voyage-3`, `groq/llama-3.3-70b`).
LITELLM_PROVIDERS: frozenset[str] = LITELLM_CHAT_PROVIDERS | LITELLM_EMBEDDING_PROVIDERS

#: Every kwarg name LiteLLM knows for a chat call: `acompletion`'s parameters, the OpenAI
#: chat parameters, LiteLLM's own (`all_litellm_params`) and the provider configs' fields.
LITELLM_PARAMS: frozenset[str] = frozenset(
    """
    acompletion adaptive_router_config adaptive_router_default_model aembedding aimg_generation
    allm_passthrough_route allow_client_keepalive_override allowed_model_region
    allowed_openai_params annotation_cost_per_page annotation_cost_per_page_batches
    anthropic_disable_workload_identity_federation anthropic_federation_rule_id
    anthropic_federation_workspace_id anthropic_identity_source anthropic_identity_token
    anthropic_identity_token_file anthropic_issuer_audience anthropic_issuer_signing_key_ref
    anthropic_issuer_subject anthropic_issuer_ttl_seconds anthropic_issuer_url
    anthropic_keycloak_auth_method anthropic_keycloak_client_id
    anthropic_keycloak_client_secret_ref anthropic_keycloak_scope anthropic_keycloak_token_url
    anthropic_organization_id anthropic_service_account_id api_base api_key api_version
    arize_api_key arize_error_sampling_rate arize_otlp_protocol arize_space_id arize_space_key
    arize_success_sampling_rate assistant_continue_message async_call atext_completion
    attempted_targets audio auto_router_config auto_router_config_path auto_router_default_model
    auto_router_embedding_model auto_router_max_input_chars auto_router_model_compression
    auto_router_routing_compression auto_truncate aws_batch_role_arn
    aws_bedrock_control_plane_endpoint azure azure_ad_token_provider azure_password azure_scope
    azure_username base_model base_url bedrock_tags best_of bos_token budget_duration cache
    cache_creation_input_audio_token_cost cache_creation_input_token_cost
    cache_creation_input_token_cost_above_100k_tokens
    cache_creation_input_token_cost_above_100k_tokens_batches
    cache_creation_input_token_cost_above_12hr
    cache_creation_input_token_cost_above_12hr_above_272k_tokens
    cache_creation_input_token_cost_above_12hr_above_272k_tokens_batches
    cache_creation_input_token_cost_above_12hr_above_272k_tokens_flex
    cache_creation_input_token_cost_above_12hr_above_272k_tokens_priority
    cache_creation_input_token_cost_above_12hr_above_272k_tokens_ultrafast
    cache_creation_input_token_cost_above_12hr_batches
    cache_creation_input_token_cost_above_12hr_flex
    cache_creation_input_token_cost_above_12hr_priority
    cache_creation_input_token_cost_above_12hr_ultrafast
    cache_creation_input_token_cost_above_1hr
    cache_creation_input_token_cost_above_1hr_above_100k_tokens
    cache_creation_input_token_cost_above_200k_tokens
    cache_creation_input_token_cost_above_200k_tokens_batches
    cache_creation_input_token_cost_above_272k_tokens
    cache_creation_input_token_cost_above_272k_tokens_batches
    cache_creation_input_token_cost_above_272k_tokens_flex
    cache_creation_input_token_cost_above_272k_tokens_priority
    cache_creation_input_token_cost_above_272k_tokens_ultrafast
    cache_creation_input_token_cost_batches cache_creation_input_token_cost_flex
    cache_creation_input_token_cost_priority cache_creation_input_token_cost_ultrafast cache_key
    cache_read_input_audio_token_cost cache_read_input_audio_token_cost_batches
    cache_read_input_audio_token_cost_flex cache_read_input_audio_token_cost_priority
    cache_read_input_image_token_cost cache_read_input_token_cost
    cache_read_input_token_cost_above_100k_tokens
    cache_read_input_token_cost_above_100k_tokens_batches
    cache_read_input_token_cost_above_200k_tokens
    cache_read_input_token_cost_above_200k_tokens_batches
    cache_read_input_token_cost_above_200k_tokens_priority
    cache_read_input_token_cost_above_272k_tokens
    cache_read_input_token_cost_above_272k_tokens_batches
    cache_read_input_token_cost_above_272k_tokens_flex
    cache_read_input_token_cost_above_272k_tokens_priority
    cache_read_input_token_cost_above_272k_tokens_ultrafast
    cache_read_input_token_cost_above_512k_tokens cache_read_input_token_cost_balanced
    cache_read_input_token_cost_batches cache_read_input_token_cost_flex
    cache_read_input_token_cost_priority cache_read_input_token_cost_ultrafast caching
    caching_groups candidate_count chatgpt_auth_file citation_cost_per_token client client_id
    client_secret client_side_timeout complete_response completion_bias_exclusion
    completion_bias_exclusion_first_token_only completion_bias_inclusion
    completion_bias_inclusion_first_token_only completion_call_id complexity_router_config
    complexity_router_default_model configurable_clientside_auth_params context
    context_window_fallback_dict contextual_control_threshold control_log_additive cooldown_time
    cost_per_query cost_per_second custom_llm_provider custom_prompt_dict daily_reset_time data
    data_residency dd_agent_host dd_agent_port dd_api_key dd_site default_api_key_rpm_limit
    default_api_key_tpm_limit default_headers deployment_id dimensions
    disable_add_transform_inline_image_block disable_optimizations echo
    enable_json_schema_validation enable_prompt_caching enable_tag_filtering
    ensure_alternating_roles eos_token examples explicit_cache_read_input_token_cost
    extra_headers fallback_depth fallbacks fastest_response final_prompt_value
    fireworks_forward_user_id force_timeout frequency_penalty function_call functions
    gcs_bucket_name gcs_path_service_account github_copilot_auth_type github_copilot_host
    github_copilot_user_session google_maps_grounding_cost_per_query guardrails headers
    hf_model_name humanloop_api_key id include_server_side_tool_invocations initial_prompt_value
    input_cost_per_audio_per_second input_cost_per_audio_per_second_above_128k_tokens
    input_cost_per_audio_token input_cost_per_audio_token_batches
    input_cost_per_audio_token_flex input_cost_per_audio_token_priority input_cost_per_character
    input_cost_per_character_above_128k_tokens input_cost_per_image
    input_cost_per_image_above_128k_tokens input_cost_per_image_token
    input_cost_per_image_token_batches input_cost_per_pixel input_cost_per_query
    input_cost_per_second input_cost_per_text_message input_cost_per_token
    input_cost_per_token_above_100k_tokens input_cost_per_token_above_100k_tokens_batches
    input_cost_per_token_above_128k_tokens input_cost_per_token_above_200k_tokens
    input_cost_per_token_above_200k_tokens_batches
    input_cost_per_token_above_200k_tokens_priority input_cost_per_token_above_272k_tokens
    input_cost_per_token_above_272k_tokens_batches input_cost_per_token_above_272k_tokens_flex
    input_cost_per_token_above_272k_tokens_priority
    input_cost_per_token_above_272k_tokens_ultrafast input_cost_per_token_above_512k_tokens
    input_cost_per_token_balanced input_cost_per_token_batches input_cost_per_token_cache_hit
    input_cost_per_token_flex input_cost_per_token_priority input_cost_per_token_ultrafast
    input_cost_per_video_per_second input_cost_per_video_per_second_above_128k_tokens
    input_cost_per_video_per_second_above_15s_interval
    input_cost_per_video_per_second_above_8s_interval input_cost_per_video_token
    input_cost_per_video_token_batches itpm keepalive_seconds kubernetes_pod_discovery
    langfuse_environment langfuse_host langfuse_prompt_version langfuse_public_key
    langfuse_secret langfuse_secret_key langfuse_span_scope langsmith_api_key langsmith_base_url
    langsmith_project langsmith_sampling_rate langsmith_tenant_id litellm_call_id
    litellm_credential_name litellm_disabled_callbacks litellm_logging_obj litellm_metadata
    litellm_request_debug litellm_session_id litellm_system_prompt litellm_trace_id
    litellm_trusted_callback_vars log_client_error_tracebacks log_probs logger_fn logit_bias
    logprobs maxTokens max_agentic_loops max_budget max_completion_tokens max_fallbacks
    max_file_size_mb max_output_tokens max_parallel_requests max_retries max_tokens
    maximum_tokens merge_reasoning_content_in_choices metadata minimum_tokens mock_response
    mock_timeout modalities model_alias_map model_config model_file_id_mapping model_info
    model_list n newrelic_api_key newrelic_region normalize num_retries ocr_cost_per_credit
    ocr_cost_per_page ocr_cost_per_page_batches openai_identity_provider_id
    openai_identity_token_file openai_service_account_id order organization otpm
    output_cost_per_audio_per_second output_cost_per_audio_token output_cost_per_character
    output_cost_per_character_above_128k_tokens output_cost_per_image output_cost_per_image_1024
    output_cost_per_image_1536 output_cost_per_image_512 output_cost_per_image_token
    output_cost_per_image_token_batches output_cost_per_pixel output_cost_per_reasoning_token
    output_cost_per_reasoning_token_flex output_cost_per_reasoning_token_priority
    output_cost_per_second output_cost_per_second_1080p output_cost_per_second_2k
    output_cost_per_second_480p output_cost_per_second_4k output_cost_per_second_720p
    output_cost_per_second_768p output_cost_per_token output_cost_per_token_above_100k_tokens
    output_cost_per_token_above_100k_tokens_batches output_cost_per_token_above_128k_tokens
    output_cost_per_token_above_200k_tokens output_cost_per_token_above_200k_tokens_batches
    output_cost_per_token_above_200k_tokens_priority output_cost_per_token_above_272k_tokens
    output_cost_per_token_above_272k_tokens_batches output_cost_per_token_above_272k_tokens_flex
    output_cost_per_token_above_272k_tokens_priority
    output_cost_per_token_above_272k_tokens_ultrafast output_cost_per_token_above_512k_tokens
    output_cost_per_token_balanced output_cost_per_token_batches output_cost_per_token_flex
    output_cost_per_token_priority output_cost_per_token_ultrafast
    output_cost_per_video_per_second output_cost_per_video_token output_vector_size
    parallel_tool_calls penalty_bias penalty_exceptions_include_stop_sequences posthog_api_key
    posthog_api_url prediction presence_penalty preset_cache_key prompt_cache_key
    prompt_cache_retention prompt_environment prompt_id prompt_label prompt_variables
    prompt_version provider_affinity_header provider_specific_header proxy_server_request
    quality_router_config quality_router_default_model raw_completion read_configured_max_tokens
    reasoning_effort region_name regional_endpoint_uplift_multiplier
    regional_processing_uplift_multiplier_eu regional_processing_uplift_multiplier_us
    repeat_penalty repetition_penalties_include_completion repetition_penalties_include_prompt
    request_timeout response_format responses_api_version retry_policy retry_strategy roles
    routing_strategy rpd rpm rust s3_access_key_id s3_bucket_name s3_bucket_owner
    s3_encryption_key_id s3_endpoint_url s3_output_bucket_name s3_region_name
    s3_secret_access_key safety_identifier search_context_cost_per_query
    search_queries_cost_per_query search_tool_name secret_fields seed sequence_penalty
    sequence_penalty_min_length service_tier shared_session signoz_ingestion_endpoint
    signoz_ingestion_key silent_model ssl_verify stop stopSequences stop_sequences store stream
    stream_chunk_size stream_options stream_response stream_timeout
    stream_timeout_by_service_tier supports_system_message tag_regex tags task_type temperature
    tenant_id text_completion thinking thought_signature_in_tool_call_id tiered_pricing timeout
    timeout_by_service_tier title token_exchange_audience token_exchange_endpoint
    token_exchange_profile token_exchange_scope tokens tool_choice tools topK topP top_k
    top_logprobs top_p tpd tpm ttl turn_off_message_logging use_chat_completions_api use_client
    use_in_pass_through use_litellm_proxy use_multiplicative_frequency_penalty
    use_multiplicative_presence_penalty use_multiplicative_sequence_penalty use_xai_oauth user
    user_continue_message verbose verbosity wandb_api_key weave_project_id web_search_options
    weight
    """.split()  # noqa: SIM905
)
