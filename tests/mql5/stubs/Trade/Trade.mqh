// The part of the MQL5 standard library's CTrade (MQL5\Include\Trade\Trade.mqh) the EA uses, with the
// signatures of the reference (www.mql5.com/en/docs/standardlibrary/tradeclasses/ctrade). The protected
// request and result members are declared because the EA derives from CTrade to clear the result.
#ifndef MT5B_TEST_TRADE_MQH
#define MT5B_TEST_TRADE_MQH

enum ENUM_LOG_LEVELS
  {
   LOG_LEVEL_NO=0,
   LOG_LEVEL_ERRORS=1,
   LOG_LEVEL_ALL=2
  };

class CObject
  {
public:
                     CObject(void);
   virtual          ~CObject(void);
  };

class CTrade : public CObject
  {
protected:
   MqlTradeRequest   m_request;
   MqlTradeResult    m_result;

public:
                     CTrade(void);
                    ~CTrade(void);
   void              LogLevel(const ENUM_LOG_LEVELS log_level);
   uint              ResultRetcode(void) const;
   ulong             ResultDeal(void) const;
   ulong             ResultOrder(void) const;
   double            ResultVolume(void) const;
   double            ResultPrice(void) const;
   string            ResultComment(void) const;
   void              SetAsyncMode(const bool mode);
   void              SetExpertMagicNumber(const ulong magic);
   void              SetDeviationInPoints(const ulong deviation);
   void              SetTypeFilling(const ENUM_ORDER_TYPE_FILLING filling);
   void              SetMarginMode(void);
   bool              PositionOpen(const string symbol,const ENUM_ORDER_TYPE order_type,const double volume,
                                  const double price,const double sl,const double tp,const string comment="");
   bool              PositionModify(const string symbol,const double sl,const double tp);
   bool              PositionModify(const ulong ticket,const double sl,const double tp);
   bool              PositionClose(const string symbol,const ulong deviation=ULONG_MAX);
   bool              PositionClose(const ulong ticket,const ulong deviation=ULONG_MAX);
   virtual bool      OrderSend(const MqlTradeRequest &request,MqlTradeResult &result);
  };

#endif // MT5B_TEST_TRADE_MQH
